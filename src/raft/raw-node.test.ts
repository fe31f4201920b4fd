import { describe, expect, it } from 'vitest';
import { AssertionFailure, SeededRandom } from '../base/index.js';
import type { PlantedBug } from './config.js';
import { newMessage } from './messages.js';
import { RawNode } from './raw-node.js';
import type { Ready } from './ready.js';
import { MemoryStorage } from './storage.js';
import { codeOf } from '../../test/support/error-codes.js';

function makeNode(id: number, voters: number[], plantedBug: PlantedBug | null = null): { node: RawNode; storage: MemoryStorage } {
  const storage = MemoryStorage.bootstrap({ voters, learners: [] });
  return { node: new RawNode({ id, storage, random: new SeededRandom(id), plantedBug }), storage };
}

function persist(storage: MemoryStorage, rd: Ready): void {
  if (rd.snapshot !== null) storage.applySnapshot(rd.snapshot);
  storage.append(rd.entries);
  if (rd.hardState !== null) storage.setHardState(rd.hardState);
}


describe('RawNode Ready contract', () => {
  it('a single voter commits its own entries only after advance reports them durable', () => {
    const { node, storage } = makeNode(1, [1]);
    node.campaign();
    let rd = node.ready();
    expect(rd.softState?.role).toBe('leader');
    expect(rd.entries).toHaveLength(1);
    expect(rd.committedEntries).toHaveLength(0); // Not durable yet: cannot count itself.
    persist(storage, rd);
    node.advance(rd);
    rd = node.ready();
    expect(rd.committedEntries.map((e) => e.index)).toEqual([1]);
    node.advance(rd);
    node.propose(new TextEncoder().encode('x'));
    rd = node.ready();
    expect(rd.entries.map((e) => e.index)).toEqual([2]);
    expect(rd.committedEntries).toHaveLength(0);
  });

  it('sends a vote only after persisting it, and a follower acknowledges appends only after persisting', () => {
    const { node } = makeNode(2, [1, 2, 3]);
    node.step(newMessage({ type: 'vote', from: 1, to: 2, term: 5, logTerm: 0, index: 0 }));
    let rd = node.ready();
    expect(rd.hardState).toMatchObject({ term: 5, vote: 1 });
    expect(rd.earlyMessages).toHaveLength(0);
    expect(rd.messages.map((m) => m.type)).toEqual(['vote-resp']);
    node.advance(rd);
    const entry = { term: 5, index: 1, type: 'normal' as const, data: new Uint8Array([1]) };
    node.step(newMessage({ type: 'app', from: 1, to: 2, term: 5, logTerm: 0, index: 0, entries: [entry], commit: 0 }));
    rd = node.ready();
    expect(rd.entries).toHaveLength(1);
    expect(rd.earlyMessages).toHaveLength(0);
    expect(rd.messages.map((m) => m.type)).toEqual(['app-resp']);
  });

  it("lets a leader's appends in an already durable term leave before the persist", () => {
    const { node, storage } = makeNode(1, [1, 2, 3]);
    node.campaign();
    let rd = node.ready(); // pre-candidate: pre-votes
    node.advance(rd);
    node.step(newMessage({ type: 'pre-vote-resp', from: 2, to: 1, term: 1 }));
    rd = node.ready(); // candidate: term 1 and the self-vote must be durable before the votes go out
    expect(rd.hardState).toMatchObject({ term: 1, vote: 1 });
    expect(rd.messages.every((m) => m.type === 'vote')).toBe(true);
    expect(rd.earlyMessages).toHaveLength(0);
    persist(storage, rd);
    node.advance(rd);
    node.step(newMessage({ type: 'vote-resp', from: 2, to: 1, term: 1 }));
    rd = node.ready();
    expect(rd.softState?.role).toBe('leader');
    expect(rd.earlyMessages.map((m) => m.type)).toEqual(['app', 'app']);
    expect(rd.messages).toHaveLength(0);
  });

  it("with the planted bug 'ack-before-persist' a follower's acknowledgement leaves early", () => {
    const { node } = makeNode(2, [1, 2, 3], 'ack-before-persist');
    const entry = { term: 5, index: 1, type: 'normal' as const, data: new Uint8Array([1]) };
    node.step(newMessage({ type: 'app', from: 1, to: 2, term: 5, logTerm: 0, index: 0, entries: [entry], commit: 0 }));
    const rd = node.ready();
    expect(rd.earlyMessages.map((m) => m.type)).toEqual(['app-resp']);
  });

  it('refuses a second ready before advance, local messages from peers, and proposals without a leader', () => {
    const { node } = makeNode(1, [1, 2, 3]);
    expect(codeOf(() => node.propose(new Uint8Array([1])))).toBe('SYNOD_NO_LEADER');
    expect(codeOf(() => node.readIndex(new Uint8Array([1])))).toBe('SYNOD_NO_LEADER');
    expect(codeOf(() => node.step(newMessage({ type: 'hup', from: 2, to: 1 })))).toBe('SYNOD_STEP_LOCAL_MESSAGE');
    expect(codeOf(() => node.proposeConfChange({ type: 'remove', nodeId: 9 }))).toBe('SYNOD_NO_LEADER');
    node.campaign();
    node.ready();
    expect(() => node.ready()).toThrow(AssertionFailure);
  });

  it('restarts from storage with term, vote and commit, and replays committed entries after applied', () => {
    const { node, storage } = makeNode(1, [1]);
    for (let i = 0; i < 3; i++) {
      if (i === 0) node.campaign();
      else node.propose(new Uint8Array([i]));
      for (let round = 0; round < 3 && node.hasReady(); round++) {
        const rd = node.ready();
        persist(storage, rd);
        node.advance(rd);
      }
    }
    const restarted = new RawNode({ id: 1, storage, random: new SeededRandom(9), applied: 1 });
    const status = restarted.status();
    expect(status).toMatchObject({ term: 1, vote: 1, commit: 3, applied: 1, role: 'follower' });
    expect(restarted.ready().committedEntries.map((e) => e.index)).toEqual([2, 3]);
  });
});
