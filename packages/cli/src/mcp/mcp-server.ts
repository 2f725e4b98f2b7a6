import { Server } from '@modelcontextprotocol/sdk/server/index.js';
import { CallToolRequestSchema, type CallToolResult, ListToolsRequestSchema } from '@modelcontextprotocol/sdk/types.js';
import { McpToolError } from './mcp-errors.js';
import type { McpSession } from './mcp-session.js';
import { runTool, TOOLS } from './mcp-tools.js';

/**
 * The custos MCP server: the low-level SDK `Server` with JSON Schema tool
 * inputs (no schema library to ship), answering as the session's task.
 */
export function createMcpServer(session: McpSession): Server {
  const server = new Server({ name: 'custos', version: '0.1.0' }, { capabilities: { tools: {} } });
  server.setRequestHandler(ListToolsRequestSchema, async () => ({ tools: [...TOOLS] }));
  server.setRequestHandler(CallToolRequestSchema, async (request): Promise<CallToolResult> => {
    try {
      const result = await runTool(session, request.params.name, request.params.arguments ?? {});
      return { content: [{ type: 'text', text: scrub(session, JSON.stringify(result, null, 2)) }] };
    } catch (error) {
      // A tool error (isError), not a protocol error: the model reads it and can act on the code.
      const failure =
        error instanceof McpToolError ? error : new McpToolError('CUSTOS_ERR_LOCAL', 'the tool failed unexpectedly');
      return {
        isError: true,
        content: [{ type: 'text', text: scrub(session, `${failure.code}: ${failure.message}`) }],
      };
    }
  });
  return server;
}

/**
 * No token this session holds can reach the model, whatever an upstream or
 * custos answered: the proxy already redacts the upstream's credentials and
 * never forwards the task token, and this is the last check before the
 * model's context.
 */
function scrub(session: McpSession, text: string): string {
  let out = text;
  for (const token of session.tokens()) out = out.split(token).join('[REDACTED:task-token]');
  return out;
}
