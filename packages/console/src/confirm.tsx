import type { ComponentChildren } from 'preact';

/**
 * An in-page confirmation (never `window.confirm`, which a hostile string
 * could not reach anyway but which blocks the page and the event stream).
 * The question is rendered as text like everything else.
 */
export function Confirm(props: {
  children: ComponentChildren;
  action: string;
  onConfirm: () => void;
  onCancel: () => void;
}) {
  return (
    <div class="overlay" role="dialog" aria-modal="true">
      <div class="dialog">
        <div class="dialog-text">{props.children}</div>
        <div class="dialog-buttons">
          <button type="button" class="danger" data-testid="confirm" onClick={props.onConfirm}>
            {props.action}
          </button>
          <button type="button" onClick={props.onCancel}>
            Cancel
          </button>
        </div>
      </div>
    </div>
  );
}
