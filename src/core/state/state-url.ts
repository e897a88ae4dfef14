/** Whether a `state` setting names a PostgreSQL database rather than a JSON file. */
const PG_URL = /^postgres(?:ql)?:\/\//i;

export function isStateUrl(state: string): boolean {
  return PG_URL.test(state);
}
