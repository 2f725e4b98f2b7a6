import { lstat, readdir, readFile, stat } from 'node:fs/promises';
import { join, relative, resolve, sep } from 'node:path';
import ignore, { type Ignore } from 'ignore';

/** A regular file the walker found. */
export interface WalkedFile {
  readonly absolute: string;
  /** Relative to the working directory when inside it, `/`-separated: what reports show. */
  readonly display: string;
  readonly size: number;
}

/** What to leave out. */
export interface WalkOptions {
  /** gitignore-style patterns, matched against paths relative to each given root. */
  readonly exclude?: readonly string[];
  /** Honour `.gitignore` files found in the tree (default true). */
  readonly gitignore?: boolean;
  readonly cwd?: string;
}

/** A path that could not be walked (missing, unreadable); reported as an error, the walk goes on. */
export interface WalkProblem {
  readonly display: string;
  readonly code: string;
}

/**
 * Lists the files under the given paths. Symbolic links inside a tree are
 * never followed — not even to targets inside it, which the walk reaches on
 * their own path anyway — so a link can neither lead the scan out of the tree
 * nor into a loop. A path given explicitly is the user's choice and is
 * followed. `.git` directories are always skipped.
 */
export async function walkTree(
  paths: readonly string[],
  options: WalkOptions = {},
): Promise<{ files: WalkedFile[]; problems: WalkProblem[] }> {
  const cwd = options.cwd ?? process.cwd();
  const files: WalkedFile[] = [];
  const problems: WalkProblem[] = [];
  const seen = new Set<string>();
  const display = (abs: string): string => {
    const rel = relative(cwd, abs);
    return (rel === '' || rel.startsWith('..') ? abs : rel).split(sep).join('/');
  };
  for (const p of paths) {
    const root = resolve(cwd, p);
    let st: Awaited<ReturnType<typeof stat>>;
    try {
      st = await stat(root);
    } catch (err) {
      problems.push({ display: display(root), code: (err as NodeJS.ErrnoException).code ?? 'EIO' });
      continue;
    }
    const excluded = ignore().add([...(options.exclude ?? [])]);
    if (st.isFile()) {
      if (!seen.has(root)) files.push({ absolute: root, display: display(root), size: st.size });
      seen.add(root);
      continue;
    }
    if (!st.isDirectory()) continue;
    const stack: { dir: string; rules: { base: string; ig: Ignore }[] }[] = [{ dir: root, rules: [] }];
    while (stack.length > 0) {
      const { dir, rules: inherited } = stack.pop()!;
      const rules = [...inherited];
      if (options.gitignore !== false) {
        const gi = await readFile(join(dir, '.gitignore'), 'utf8').catch(() => undefined);
        if (gi !== undefined) rules.push({ base: dir, ig: ignore().add(gi) });
      }
      let names: string[];
      try {
        names = (await readdir(dir)).sort();
      } catch (err) {
        problems.push({ display: display(dir), code: (err as NodeJS.ErrnoException).code ?? 'EIO' });
        continue;
      }
      const subdirs: string[] = [];
      for (const name of names) {
        const abs = join(dir, name);
        let ls: Awaited<ReturnType<typeof lstat>>;
        try {
          ls = await lstat(abs);
        } catch (err) {
          problems.push({ display: display(abs), code: (err as NodeJS.ErrnoException).code ?? 'EIO' });
          continue;
        }
        if (ls.isSymbolicLink()) continue;
        const isDir = ls.isDirectory();
        if (isDir && name === '.git') continue;
        const relRoot = relative(root, abs).split(sep).join('/') + (isDir ? '/' : '');
        if (excluded.ignores(relRoot)) continue;
        if (rules.some((r) => r.ig.ignores(relative(r.base, abs).split(sep).join('/') + (isDir ? '/' : '')))) continue;
        if (isDir) subdirs.push(abs);
        else if (ls.isFile() && !seen.has(abs)) {
          seen.add(abs);
          files.push({ absolute: abs, display: display(abs), size: ls.size });
        }
      }
      for (const d of subdirs.reverse()) stack.push({ dir: d, rules });
    }
  }
  return { files, problems };
}
