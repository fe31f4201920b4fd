/** The (pre-)candidate's message handler (paper figure 2, "Candidates"; thesis §9.6 for pre-vote). */

import { mark, type ErrorCode } from '../base/index.js';
import type { Raft } from './raft.js';
import { bcastAppend } from './replication.js';
import { handleAppendEntries, handleHeartbeat, handleSnapshot } from './step-follower.js';
import type { Message } from './types.js';
import { noneId } from './types.js';

/** Handles `m` as candidate or pre-candidate. */
export function stepCandidate(r: Raft, m: Message): ErrorCode | null {
  const ourVoteResponse = r.role === 'pre-candidate' ? 'pre-vote-resp' : 'vote-resp';
  switch (m.type) {
    case 'prop':
      mark('proposal dropped: no leader (candidate)');
      return 'SYNOD_NO_LEADER';
    case 'read-index':
      return 'SYNOD_NO_LEADER';
    case 'app':
      // A leader exists in this term (same or newer): concede (paper §5.2).
      r.becomeFollower(m.term, m.from);
      handleAppendEntries(r, m);
      return null;
    case 'heartbeat':
      r.becomeFollower(m.term, m.from);
      handleHeartbeat(r, m);
      return null;
    case 'snap':
      r.becomeFollower(m.term, m.from);
      handleSnapshot(r, m);
      return null;
    case 'timeout-now':
      mark('timeout-now ignored: already campaigning');
      return null;
    default:
      break;
  }
  if (m.type !== ourVoteResponse) return null;
  const result = r.poll(m.from, !m.reject);
  if (result === 'won') {
    if (r.role === 'pre-candidate') {
      r.campaign('election');
    } else {
      r.becomeLeader();
      bcastAppend(r);
    }
  } else if (result === 'lost') {
    mark('election lost');
    // Pre-candidates keep their term; candidates stay in the term they started.
    r.becomeFollower(r.term, noneId);
  }
  return null;
}
