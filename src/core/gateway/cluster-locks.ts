/**
 * A switch another node started: that node's worker pool closes the account's sessions
 * on its own listeners (worker-pool.ts locked()), but the user may have sessions open to
 * the source through this node too; they are closed here, so nothing changes on the
 * source behind the final pass's back. New logins are refused by the record's state.
 */
import type { Logger } from '../log/logger.js';
import type { SessionRegistry } from '../sessions/registry.js';
import type { Cluster, ClusterChange } from '../state/types.js';

/** Close this node's sessions of each account another node locks; returns the unsubscribe. */
export function closeSessionsOnRemoteLock(
  cluster: Pick<Cluster, 'onChange'>,
  sessions: Pick<SessionRegistry, 'kick'>,
  logger: Logger,
): () => void {
  return cluster.onChange((c: ClusterChange) => {
    if (c.state !== 'transferring' && c.phase !== 'switching') return;
    const kicked = sessions.kick(c.address, 'account-locked');
    if (kicked)
      logger.info('closed open source sessions for a switch on another node', {
        address: c.address,
        node: c.node,
        sessions: kicked,
      });
  });
}
