import { CustosError } from '@custos/core';
import type { DatabaseEngine, EngineConnection } from './database-engine.js';
import { MysqlEngine } from './mysql/mysql-engine.js';
import { PostgresEngine } from './postgres/postgres-engine.js';

/**
 * The engine for a connection. Connecting is lazy: call
 * `verifyConnection()` to check the URL and the admin's rights. The URL is
 * parsed now: a query parameter outside the driver's allow-list throws
 * CUSTOS_ERR_ENGINE_URL_REFUSED (see `parseEngineUrl`).
 *
 * @example
 * const engine = createEngine({ type: 'postgres', url: 'postgres://custos_admin:…@db:5432/app' });
 * await engine.verifyConnection();
 */
export function createEngine(connection: EngineConnection): DatabaseEngine {
  const options = {
    url: connection.url,
    ...(connection.egress ? { egress: connection.egress } : {}),
    ...(connection.tlsCa ? { tlsCa: connection.tlsCa } : {}),
  };
  switch (connection.type) {
    case 'postgres':
      return new PostgresEngine(options);
    case 'mysql':
      return new MysqlEngine(options);
    default:
      throw new CustosError('CUSTOS_ERR_VALIDATION', 'The engine type must be postgres or mysql.');
  }
}
