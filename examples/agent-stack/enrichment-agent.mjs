// The enrichment agent: a Node sub-agent that was handed a task token
// (CUSTOS_TOKEN) by the coordinator. It gets a database user of its own —
// created for this task, dropped when the task ends — reads what it needs,
// and ends its task. It never sees the database's admin credentials, and
// the password it gets dies with its task.
import { Custos } from '@custos/sdk';
import pg from 'pg';

const custos = new Custos({ address: process.env.CUSTOS_ADDR });
await custos.withTask({ token: process.env.CUSTOS_TOKEN }, async (task) => {
  const creds = await task.creds('warehouse/reader');
  const url = new URL(process.env.WAREHOUSE_URL);
  url.username = creds.username;
  url.password = creds.password;
  const db = new pg.Client({ connectionString: url.toString() });
  await db.connect();
  try {
    const { rows } = await db.query('SELECT count(*)::int AS n FROM customers');
    console.log(`enrichment: task ${task.id} read ${rows[0].n} customers as database user ${creds.username}`);
  } finally {
    await db.end();
  }
}); // the task ends here: custos drops the database user
