/**
 * A failure of an MCP tool: reported to the model as an MCP tool error
 * (`isError: true`) carrying a stable custos code. The message is built by
 * this package or taken from custos's own error body, never from a token or
 * a secret value.
 */
export class McpToolError extends Error {
  readonly code: string;
  constructor(code: string, message: string) {
    super(message);
    this.code = code;
    this.name = 'McpToolError';
  }
}

/** The codes this MCP server adds to the server's own (docs/errors.md, "MCP tool codes"). */
export const MCP_CODES = {
  /** `handle` names no child this MCP server process delegated. */
  unknownHandle: 'CUSTOS_ERR_UNKNOWN_HANDLE',
} as const;
