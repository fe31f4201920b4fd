/**
 * Scenario scripts: plain-text files of commands, each followed by "----" and the transcript it
 * produced. `runScript` replays the commands and returns the file as it should read; a test compares
 * it with the file on disk, and REWRITE=1 writes it back (for reviewing a behaviour change as a diff).
 * `expect-*` commands assert regardless of the transcript, so a rewritten golden cannot hide a bug.
 */

import { ScenarioWorld, formatLog } from './harness.js';
import type { ConfChange, NodeId, RaftConfigInput, Role } from '../../src/raft/index.js';

interface Block {
  readonly comments: string[];
  readonly command: string;
}

/** Parses a script into commands with their leading comments; transcripts are ignored. */
export function parseScript(text: string): Block[] {
  const blocks: Block[] = [];
  let comments: string[] = [];
  let inOutput = false;
  for (const line of text.split('\n')) {
    if (inOutput) {
      if (line.trim() === '') inOutput = false;
      continue;
    }
    if (line.trim() === '') continue;
    if (line.startsWith('#')) {
      comments.push(line);
      continue;
    }
    blocks.push({ comments, command: line.trim() });
    comments = [];
    inOutput = true;
    // The next line must be the "----" separator if a transcript follows; it is skipped with it.
  }
  return blocks;
}

/** Runs `text` and returns the script with fresh transcripts; throws on a failed expectation. */
export function runScript(text: string): string {
  const world = new ScenarioWorld();
  const out: string[] = [];
  for (const block of parseScript(text)) {
    if (block.comments.length > 0) out.push(...block.comments);
    out.push(block.command, '----');
    let lines: string[];
    try {
      lines = runCommand(world, block.command);
    } catch (error) {
      // The transcript so far is the best explanation of a failed expectation.
      throw new Error(`${(error as Error).message}\n--- transcript up to the failure ---\n${out.join('\n')}`);
    }
    out.push(...(lines.length > 0 ? lines : ['ok']), '');
  }
  return out.join('\n');
}

function ids(words: string[]): NodeId[] {
  return words.map((word) => {
    const id = Number(word);
    if (!Number.isInteger(id) || id <= 0) throw new Error(`not a node id: ${word}`);
    return id;
  });
}

function keyValues(words: string[]): Map<string, string> {
  return new Map(words.filter((w) => w.includes('=')).map((w) => w.split('=', 2) as [string, string]));
}

function list(value: string | undefined): number[] {
  if (value === undefined || value === '') return [];
  return value.split(',').map(Number);
}

function configFrom(options: Map<string, string>): Partial<RaftConfigInput> {
  return {
    preVote: options.get('pre-vote') !== 'false',
    checkQuorum: options.get('check-quorum') !== 'false',
    readOnlyOption: options.get('read-only') === 'lease-based' ? 'lease-based' : 'safe',
    electionTicks: Number(options.get('election-ticks') ?? 10),
    messageBytesMax: Number(options.get('message-bytes-max') ?? 1024 * 1024),
  };
}

function runCommand(world: ScenarioWorld, command: string): string[] {
  const [name, ...args] = command.split(/\s+/);
  const options = keyValues(args);
  const positional = args.filter((a) => !a.includes('='));
  switch (name) {
    case 'add-nodes': {
      const count = Number(positional[0]);
      const all = Array.from({ length: count }, (_, i) => i + 1);
      const voters = options.has('voters') ? list(options.get('voters')) : all;
      return world.addNodes(all, voters, list(options.get('learners')), configFrom(options));
    }
    case 'log': {
      const terms = list(options.get('terms'));
      const hardTerm = Number(options.get('term') ?? Math.max(0, ...terms));
      return world.setLog(ids(positional)[0]!, terms, hardTerm, Number(options.get('commit') ?? 0));
    }
    case 'campaign':
      world.raft(ids(positional)[0]!).campaign();
      return [];
    case 'tick': {
      const [id, count] = ids(positional);
      for (let i = 0; i < (count ?? 1); i++) world.raft(id!).tick();
      return [];
    }
    case 'propose':
      return world.propose(ids([positional[0]!])[0]!, positional[1]!);
    case 'propose-conf-change':
      return world.proposeConfChange(ids([positional[0]!])[0]!, { type: positional[1], nodeId: Number(positional[2]) } as ConfChange);
    case 'read-index':
      return world.readIndex(ids([positional[0]!])[0]!, positional[1]!);
    case 'transfer-leader': {
      const [id, to] = ids(positional);
      world.raft(id!).transferLeader(to!);
      return [];
    }
    case 'process-ready': {
      const crashBeforePersist = options.get('crash-before-persist') === 'true';
      return ids(positional).flatMap((id) => world.processReady(id, { crashBeforePersist }));
    }
    case 'deliver-msgs':
      return world.deliver(positional.length > 0 ? ids(positional) : null);
    case 'drop-msgs': {
      const dropped = world.queue.filter((m) => positional.length === 0 || ids(positional).includes(m.to));
      world.queue = world.queue.filter((m) => !dropped.includes(m));
      return [`dropped ${dropped.length} messages`];
    }
    case 'stabilize':
      return world.stabilize(positional.length > 0 ? ids(positional) : null);
    case 'partition':
      world.partition(command.slice('partition'.length).split('|').map((group) => ids(group.trim().split(/\s+/))));
      return [];
    case 'compact': {
      const [id, index] = ids(positional);
      return world.compact(id!, index!);
    }
    case 'tick-all':
      return world.tickAll(Number(positional[0] ?? 1));
    case 'heal':
      world.heal();
      return [];
    case 'crash':
      for (const id of ids(positional)) world.crash(id);
      return [];
    case 'restart':
      for (const id of ids(positional)) world.restart(id);
      return [];
    case 'status':
      return ids(positional).map((id) => formatStatus(world, id));
    case 'raft-log':
      return ids(positional).map((id) => formatLog(world.node(id)));
    case 'applied':
      return ids(positional).map((id) => `${id} applied [${world.node(id).applied.join(', ')}]`);
    default:
      return runExpectation(world, name!, positional, options);
  }
}

function formatStatus(world: ScenarioWorld, id: NodeId): string {
  const node = world.node(id);
  if (node.raft === null) return `${id} down`;
  const s = node.raft.status();
  return `${id} ${s.role} term=${s.term} leader=${s.leader} commit=${s.commit} applied=${s.applied} last=${s.lastIndex} voters=${s.confState.voters.join(',')}${s.confState.learners.length ? ` learners=${s.confState.learners.join(',')}` : ''}`;
}

function fail(message: string): never {
  throw new Error(`expectation failed: ${message}`);
}

function runExpectation(world: ScenarioWorld, name: string, positional: string[], options: Map<string, string>): string[] {
  const id = ids([positional[0]!])[0]!;
  switch (name) {
    case 'expect-role': {
      const role = world.raft(id).status().role;
      if (role !== (positional[1] as Role)) fail(`node ${id} is ${role}, expected ${positional[1]}`);
      return [`${id} is ${role}`];
    }
    case 'expect-log': {
      const line = formatLog(world.node(id));
      const terms = line.match(/terms=\[([^\]]*)\]/)![1];
      if (terms !== options.get('terms')) fail(`node ${id} log terms [${terms}], expected [${options.get('terms')}]`);
      return [`${id} log terms [${terms}]`];
    }
    case 'expect-commit': {
      const commit = world.raft(id).status().commit;
      if (commit !== Number(positional[1])) fail(`node ${id} commit ${commit}, expected ${positional[1]}`);
      return [`${id} commit ${commit}`];
    }
    case 'expect-applied': {
      const applied = world.node(id).applied.map((line) => line.split(' ').slice(1).join(' ')).filter((d) => d !== '');
      const expected = options.get('data') === '' ? [] : (options.get('data') ?? '').split(',');
      if (applied.join(',') !== expected.join(',')) fail(`node ${id} applied [${applied}], expected [${expected}]`);
      return [`${id} applied [${applied.join(',')}]`];
    }
    default:
      throw new Error(`unknown command ${name}`);
  }
}
