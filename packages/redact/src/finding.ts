/** A value custos knows is secret, e.g. one it issued to a task. */
export interface KnownSecret {
  /** Shown in the replacement marker, so it must not itself be secret. */
  name: string;
  value: string;
}

/** One span of text that must not be shown. */
export interface Finding {
  kind: 'known' | 'detector';
  /** Detector id (e.g. `github-token`) or the known secret's name. */
  ruleId: string;
  /** UTF-16 offsets into the text given; `end` is exclusive. */
  start: number;
  end: number;
  /** The matched text. Callers mask it; it must never be logged. */
  value: string;
}
