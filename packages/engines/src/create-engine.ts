import { CustosError } from '@custos/core';
import type { DatabaseEngine, EngineConnection } from './database-engine.js';
import { MysqlEngine } from './mysql/mysql-engine.js';
import { PostgresEngine } from './postgres/postgres-engine.js';

/**
 * The engine for a connection. Connecting is lazy: call
 * `verifyConnection()` to check the URL and the admin's rights.
 *
 * @example
 * const engine = createEngine({ type: 'postgres', url: 'postgres://custos_admin:…@db:5432/app' });
 * await engine.verifyConnection();
 */
export function createEngine(connection: EngineConnection): DatabaseEngine {
  switch (connection.type) {
    case 'postgres':
      return new PostgresEngine({ url: connection.url, ...(connection.egress ? { egress: connection.egress } : {}) });
    case 'mysql':
      return new MysqlEngine({ url: connection.url, ...(connection.egress ? { egress: connection.egress } : {}) });
    default:
      throw new CustosError('CUSTOS_ERR_VALIDATION', 'The engine type must be postgres or mysql.');
  }
}
