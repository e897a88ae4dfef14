/**
 * `autoport config check --connect-state`: the one check that connects. A postgresql://
 * state is opened with a `SELECT 1` (nothing is written, the schema is not touched) so an
 * unreachable or refusing database is found before `autoport proxy` starts.
 */
import { pgConnectionString } from '../state/open-store.js';
import { isStateUrl } from '../state/state-url.js';
import type { ConfigProblem } from './issues.js';
import type { Config } from './types.js';

const CONNECT_TIMEOUT_MS = 5_000;

/** undefined when the state is a JSON file or the database answers. */
export async function stateConnectionProblem(
  config: Pick<Config, 'state' | 'stateDir' | 'statePassword'>,
): Promise<ConfigProblem | undefined> {
  if (!isStateUrl(config.state)) return undefined;
  const { default: pg } = await import('pg');
  const client = new pg.Client({
    connectionString: pgConnectionString(config),
    connectionTimeoutMillis: CONNECT_TIMEOUT_MS,
  });
  client.on('error', () => undefined);
  try {
    await client.connect();
    await client.query('SELECT 1');
    return undefined;
  } catch (err) {
    return {
      path: 'state',
      value: config.state,
      problem: explain(err as Error & { code?: string }),
    };
  } finally {
    await client.end().catch(() => undefined);
  }
}

function explain(err: Error & { code?: string }): string {
  const why = `cannot reach the PostgreSQL state (${err.code ?? err.message})`;
  switch (err.code) {
    case 'ECONNREFUSED':
    case 'ENOTFOUND':
    case 'ETIMEDOUT':
    case 'EHOSTUNREACH':
      return `${why}; check the host and port, that PostgreSQL runs and listens there (listen_addresses), and the firewall`;
    case '28P01':
    case '28000':
      return `${why}; check the user in the URL, statePasswordFile or statePasswordEnv, and pg_hba.conf`;
    case '3D000':
      return `${why}; the database does not exist: createdb -O <user> <database>`;
    default:
      return `${why}: ${err.message}; try psql with the same URL to see what the server says`;
  }
}
