import type { Detector } from './detector.js';
import { isPlaceholder } from './detector-checks.js';

const PASSWORD_WORDS = new Set(['password', 'passwd', 'pass', 'pwd', 'secret', 'pw', 'changeme']);

/** The password inside a database URL such as `postgres://user:PASSWORD@host/db`. */
export const databaseConnectionString: Detector = {
  id: 'database-connection-string',
  description: 'Password in a database connection URL (postgres, mysql, mongodb, redis, amqp, mssql…)',
  keywords: [
    'postgres',
    'mysql',
    'mariadb',
    'mongodb',
    'redis',
    'amqp',
    'mssql',
    'sqlserver',
    'clickhouse',
    'cockroach',
  ],
  caseInsensitiveKeywords: true,
  pattern:
    /(?<![A-Za-z0-9])(?:postgres(?:ql)?|mysql|mariadb|mongodb(?:\+srv)?|rediss?|amqps?|mssql|sqlserver|clickhouse|cockroachdb)(?:\+[a-z0-9]+)?:\/\/[^\s:@/"'<>]{1,128}:(?<secret>[^\s@/"'<>]{1,256})@/gi,
  maxLength: 420,
  span: /[^\s"'<>]/,
  validate: (password) => !PASSWORD_WORDS.has(password.toLowerCase()) && !isPlaceholder(password),
};
