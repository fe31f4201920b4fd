/**
 * Snowflake mode (Twitter, 2010; Baidu uid-generator, Meituan Leaf-snowflake, Sonyflake): a worker
 * that holds a unique (datacenter, worker) pair mints ids alone, from its clock, with no round trip
 * per id. An id is the unit of the clock (see SnowflakeLayout), the pair, and a sequence within the
 * unit; ids of one generator strictly increase, and ids of different pairs never collide.
 *
 * The pair is held through a WorkerGrant: by hand (`staticWorkerGrant`), or leased from Synod
 * (worker-lease.ts). The grant also bounds the timestamps this holder may use: only above
 * `lastUsedMs`, which covers every earlier holder of the pair, and up to `reservedUntilMs`, which
 * the next holder will start above. That is what makes a reassigned worker id safe: two holders
 * of one pair never issue in the same unit, whatever their clocks say.
 *
 * The clock is the wall clock: ids carry it and other processes compare it. It can step back
 * (NTP, a VM migration). A generator never issues a unit below its last one: a step back of up to
 * `rollbackWaitMsMax` is waited out (Leaf waits out 5 ms); a larger one is refused with
 * SYNOD_ID_CLOCK_BACKWARDS, issuing nothing, until the clock passes the last unit again.
 *
 * Waiting, cheapest first. Within a unit, `next()` is one clock read and one bigint addition. When
 * a unit's 2^sequenceBits ids are used, the next unit is under a millisecond away, and `next()`
 * spins on the clock for it (see `snowflakeSpinWaitMsMax`). Anything longer (a step back waited
 * out, the reservation reached before its extension landed) makes `next()` return a promise;
 * such callers queue and are served in arrival order, and later callers queue behind them.
 */

import { SynodError, assert, isSynodError, type Random } from '../../base/index.js';
import { idBatchMax, type IdGenerator } from './id-generator.js';
import { backoffDelayMs, newJitter } from './segment-store.js';
import {
  SnowflakeDecimalCursor, snowflakeLayoutDefault, type SnowflakeLayout,
} from './snowflake-layout.js';
import {
  checkGrant, resolveConfig, type SnowflakeClock, type SnowflakeConfig,
  type SnowflakeGeneratorOptions,
} from './snowflake-options.js';
import type { WorkerGrant } from './worker-grant.js';

export {
  staticWorkerGrant, type StaticWorkerGrantOptions, type WorkerGrant,
} from './worker-grant.js';
export {
  snowflakeExtendRetryDelayMsDefault, snowflakeExtendRetryDelayMsMaxDefault,
  snowflakeReservationAheadMsDefault, snowflakeRollbackWaitMsMaxDefault, snowflakeWaitersMaxDefault,
  type SnowflakeClock, type SnowflakeGeneratorOptions,
} from './snowflake-options.js';

/** Counters for metrics and tests. */
export interface SnowflakeStats {
  readonly idsIssued: number;
  /** Waits for the next unit after the sequence of one ran out (spins, mostly). */
  readonly sequenceOverflows: number;
  /** Waits for a clock that stepped back (or, before the first id, was just behind lastUsedMs). */
  readonly rollbackWaits: number;
  /** Calls refused with SYNOD_ID_CLOCK_BACKWARDS. */
  readonly rollbackRefusals: number;
  /** Calls refused with SYNOD_ID_CLOCK_BEHIND: the clock far below the grant's lastUsedMs. */
  readonly startRefusals: number;
  /** Waits for an extension of the reservation. */
  readonly reservationWaits: number;
  /** Extensions that failed (or fell short), each retried after a backoff. */
  readonly extensionFailures: number;
}

/**
 * Waits up to this long are spun out synchronously on the clock; longer ones return a promise.
 * The wait for the next unit after a sequence overflow is below 1 ms. A timer cannot wait that
 * little: setTimeout rounds up to 1 ms and fires on the next turn of the event loop, so each
 * overflow would lose 1–2 ms and cap the rate near a third of the layout's ceiling. The spin
 * costs one core for the rest of the millisecond, for a caller that asked for more ids than a
 * millisecond holds.
 */
export const snowflakeSpinWaitMsMax = 1;
/** A spin gives up after this many clock reads (tens of ms) and waits with a timer instead: a
 *  clock that stands still must not hang the process. */
export const snowflakeSpinReadsMax = 1 << 20;

/** Why no id can be issued now; null when one can. */
type Blocked = 'overflow' | 'rollback' | 'reservation';

/** A call waiting for ids: it wants `wanted` of them and has `ids` so far. */
interface Waiter {
  readonly wanted: number;
  readonly ids: bigint[];
  resolve(ids: bigint[]): void;
  reject(error: unknown): void;
}

const wallClock: SnowflakeClock = { nowMs: () => Date.now() };

function invalid(message: string): SynodError {
  return new SynodError('SYNOD_INVALID_ARGUMENT', message);
}

function firstId(ids: bigint[]): bigint {
  return ids[0]!;
}

function decimalOf(id: bigint): string {
  return id.toString();
}

/** Resolves after `ms`, or at once when `signal` aborts. Ref'd: a caller awaits what follows. */
function sleepMs(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) {
      resolve();
      return;
    }
    const done = (): void => {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal.addEventListener('abort', done);
  });
}

/** Lets pending I/O run between two units of a long batch, without a timer's 1 ms. */
function yieldTurn(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}


/** Snowflake ids from one worker id; see the module comment. */
export class SnowflakeGenerator implements IdGenerator<bigint> {
  readonly kind = 'snowflake' as const;
  readonly layout: SnowflakeLayout;
  readonly datacenterId: number;
  readonly workerId: number;
  readonly #grant: WorkerGrant;
  readonly #clock: SnowflakeClock;
  readonly #config: SnowflakeConfig;
  readonly #sleep: (ms: number, signal: AbortSignal) => Promise<void>;
  readonly #random: Random;
  /** The datacenter and worker fields in place, ORed into every id. */
  readonly #workerBits: bigint;
  /** Ids per unit: 2^sequenceBits. */
  readonly #sequenceLimit: number;
  /** The first unit this holder may use: the one after the unit of grant.lastUsedMs. */
  readonly #firstTick: number;
  /**
   * The unit of the last id issued, with its bounds in unix ms [start, end). Before the first id,
   * the unit below #firstTick with its sequence used up, so waiting rules apply alike.
   * Invariant: units only increase.
   */
  #tick: number;
  #tickStartMs: number;
  #tickEndMs: number;
  /** Ids issued in #tick so far, i.e. the next id's sequence; at most #sequenceLimit. */
  #sequence: number;
  /** The first id of #tick, precomputed once per unit, and the next one: it plus #sequence. */
  #firstId = 0n;
  #nextId = 0n;
  readonly #decimal = new SnowflakeDecimalCursor();
  /**
   * The window of clock readings where next() may take the fast path: #tick's bounds while no
   * call waits and the generator runs, else empty. One check stands for all three conditions.
   */
  #fastStartMs = Infinity;
  #fastEndMs = -Infinity;
  /** The highest reservation bound seen, from the grant or an extension. */
  #reservedUntilMs: number;
  #idsIssued = 0;
  readonly #counts = {
    sequenceOverflows: 0, rollbackWaits: 0, rollbackRefusals: 0, startRefusals: 0,
    reservationWaits: 0, extensionFailures: 0,
  };
  /** What the last #prepare found in the way, and the clock reading that clears it. */
  #blocked: Blocked | null = null;
  #resumeAtMs = 0;
  /** Ms waited for a backward clock since the last id; bounds a wait for a clock that stalls. */
  #rollbackWaitedMs = 0;
  readonly #waiters: Waiter[] = [];
  #draining = false;
  /** Wakes the drain loop waiting for the reservation to move. */
  #wakeDrain: (() => void) | null = null;
  #extending = false;
  #extendRetryPending = false;
  /** Consecutive failed extensions; sets the retry pause. */
  #extendFailures = 0;
  /** Set once closed or the grant is lost; every call fails with it from then on. */
  #stopError: SynodError | null = null;
  /** Aborts on stop, cutting sleeps short. */
  readonly #stopController = new AbortController();
  #closing: Promise<void> | null = null;
  readonly #onLost = (): void => {
    if (this.#closing !== null) return;
    this.#stop(new SynodError('SYNOD_ID_WORKER_LEASE_LOST',
      `snowflake ${this.#name}: the worker id lease was lost; the generator stopped`));
  };

  constructor(options: SnowflakeGeneratorOptions) {
    this.layout = options.layout ?? snowflakeLayoutDefault;
    this.#config = resolveConfig(options);
    checkGrant(options.grant);
    this.#grant = options.grant;
    this.datacenterId = this.#grant.datacenterId;
    this.workerId = this.#grant.workerId;
    this.#workerBits = this.layout.workerBitsOf(this.datacenterId, this.workerId);
    this.#clock = options.clock ?? wallClock;
    this.#sleep = options.sleep ?? sleepMs;
    this.#random = options.random ?? newJitter();
    this.#sequenceLimit = this.layout.idsPerTickMax;
    this.#firstTick = Math.max(0, this.layout.tickOf(this.#grant.lastUsedMs) + 1);
    this.#tick = this.#firstTick - 1;
    this.#tickStartMs = this.layout.tickStartMs(this.#tick);
    this.#tickEndMs = this.#tickStartMs + this.layout.timestampUnitMs;
    this.#sequence = this.#sequenceLimit;
    this.#reservedUntilMs = this.#grant.reservedUntilMs;
    assert(this.#tickEndMs > this.#grant.lastUsedMs, 'snowflake: the first unit above lastUsedMs');
    if (this.#grant.lost.aborted) this.#onLost();
    else this.#grant.lost.addEventListener('abort', this.#onLost);
  }

  /** The grant's loss signal: aborts when this generator may issue no more ids. */
  get lost(): AbortSignal {
    return this.#grant.lost;
  }

  get stats(): SnowflakeStats {
    return { idsIssued: this.#idsIssued, ...this.#counts };
  }

  /**
   * The next id: synchronous unless a wait longer than a spin is needed. Throws (or, when queued,
   * rejects with) SYNOD_ID_CLOCK_BACKWARDS, SYNOD_ID_CLOCK_BEHIND, SYNOD_ID_SPACE_EXHAUSTED,
   * SYNOD_ID_WORKER_LEASE_LOST, SYNOD_ID_GENERATOR_CLOSED or SYNOD_ID_WAITERS_EXHAUSTED.
   */
  next(): bigint | Promise<bigint> {
    const nowMs = this.#clock.nowMs();
    if (nowMs >= this.#fastStartMs && nowMs < this.#fastEndMs &&
      this.#sequence < this.#sequenceLimit) {
      // The hot path: no allocation but the id itself.
      this.#sequence += 1;
      this.#idsIssued += 1;
      const id = this.#nextId;
      this.#nextId = id + 1n;
      return id;
    }
    return this.#nextSlow(nowMs);
  }

  /**
   * The next id in decimal, for JSON (a JSON number loses bits past 2^53). A bigint's toString
   * per id would take most of the time a unit's 4,096 ids have; the cursor shares the work.
   */
  nextString(): string | Promise<string> {
    const id = this.next();
    if (typeof id !== 'bigint') return id.then(decimalOf);
    // `id` is the last one issued: #firstId + #sequence - 1.
    return this.#decimal.format(this.#firstId, this.#sequence - 1);
  }

  /** `count` ids (1 to idBatchMax) in order. Between units it lets other work run. */
  async nextBatch(count: number): Promise<bigint[]> {
    if (!Number.isSafeInteger(count) || count < 1 || count > idBatchMax) {
      throw invalid(`snowflake: a batch is a whole number of ids in [1, ${idBatchMax}]`);
    }
    if (this.#stopError !== null) throw this.#stopError;
    return this.#enqueue(count);
  }

  /** Stops: waiters reject with SYNOD_ID_GENERATOR_CLOSED, timers end, the grant is released. */
  close(): Promise<void> {
    this.#closing ??= this.#shutdown();
    return this.#closing;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  get #name(): string {
    return `${this.datacenterId}/${this.workerId}`;
  }

  async #shutdown(): Promise<void> {
    this.#grant.lost.removeEventListener('abort', this.#onLost);
    this.#stop(new SynodError('SYNOD_ID_GENERATOR_CLOSED',
      `snowflake generator ${this.#name} is closed`));
    // An extension in flight is not awaited: a hung coordinator must not hang close.
    await this.#grant.release();
  }

  #stop(error: SynodError): void {
    this.#stopError = error;
    this.#updateFastPath();
    this.#rejectWaiters(error);
    this.#stopController.abort();
    this.#wake();
  }

  /** next() off the fast path: a new unit, an overflow spun out, or a reason to queue. */
  #nextSlow(nowMs: number): bigint | Promise<bigint> {
    if (this.#stopError !== null) throw this.#stopError;
    if (this.#waiters.length === 0) {
      let blocked = this.#prepare(nowMs);
      if (blocked !== null && blocked !== 'reservation' &&
        this.#resumeAtMs - nowMs <= snowflakeSpinWaitMsMax) {
        this.#countWait(blocked);
        blocked = this.#prepare(this.#spin(this.#resumeAtMs));
      }
      if (blocked === null) return this.#issue();
    }
    return this.#enqueue(1).then(firstId);
  }

  /** Issues the next id of the current unit; #prepare has just made room. */
  #issue(): bigint {
    assert(this.#sequence < this.#sequenceLimit, 'snowflake: the unit has room');
    this.#sequence += 1;
    this.#idsIssued += 1;
    const id = this.#nextId;
    this.#nextId = id + 1n;
    return id;
  }

  /**
   * Makes the current unit able to issue an id at clock reading `nowMs` and returns null, or
   * returns what is in the way (with #resumeAtMs, the reading that clears a clock wait). Throws
   * the refusals: a clock too far back or behind, the id space exhausted.
   */
  #prepare(nowMs: number): Blocked | null {
    assert(Number.isFinite(nowMs), 'snowflake: the clock reads a finite number');
    const tick = this.layout.tickOf(nowMs);
    if (tick > this.#tick) return this.#enterTick(tick, nowMs);
    const roomLeft = this.#sequence < this.#sequenceLimit;
    if (tick === this.#tick && roomLeft) return this.#onReady();
    // The clock has yet to reach the last unit (while it has room) or to pass it.
    this.#resumeAtMs = roomLeft ? this.#tickStartMs : this.#tickEndMs;
    assert(this.#resumeAtMs > nowMs, 'snowflake: a clock wait lies ahead');
    const overflow = tick === this.#tick && this.#tick >= this.#firstTick;
    this.#blocked = overflow ? 'overflow' : this.#onClockBehind(nowMs);
    return this.#blocked;
  }

  /** Enters unit `tick`, above the current one, unless the id space or reservation forbids. */
  #enterTick(tick: number, nowMs: number): Blocked | null {
    if (tick > this.layout.timestampTicksMax) throw this.layout.spaceExhausted(nowMs);
    const startMs = this.layout.tickStartMs(tick);
    if (startMs > this.#reservedUntil()) {
      this.#startExtension(nowMs);
      this.#blocked = 'reservation';
      return this.#blocked;
    }
    // Invariant: units only increase, and never reach down to an earlier holder's.
    assert(tick > this.#tick && tick >= this.#firstTick, 'snowflake: units only increase');
    assert(startMs > this.#grant.lastUsedMs, 'snowflake: a unit above lastUsedMs');
    this.#tick = tick;
    this.#tickStartMs = startMs;
    this.#tickEndMs = startMs + this.layout.timestampUnitMs;
    this.#sequence = 0;
    this.#firstId = this.layout.firstIdOf(tick, this.#workerBits);
    this.#nextId = this.#firstId;
    this.#extendAhead(nowMs);
    return this.#onReady();
  }

  #onReady(): null {
    this.#blocked = null;
    this.#rollbackWaitedMs = 0;
    this.#updateFastPath();
    return null;
  }

  /** Decides whether a clock behind the last unit is waited out or refused. */
  #onClockBehind(nowMs: number): Blocked {
    const started = this.#tick >= this.#firstTick;
    // Measured from the last id's timestamp; before the first id, from the first one allowed.
    const behindMs = (started ? this.#tickStartMs : this.#tickEndMs) - nowMs;
    // Before the first id the grant may allow a longer wait: a successor of a leased worker id
    // starts above its predecessor's reservation, which runs ahead of the clock.
    const waitMaxMs = started
      ? this.#config.rollbackWaitMsMax
      : Math.max(this.#config.rollbackWaitMsMax, this.#grant.startWaitMsMax ?? 0);
    // A clock that runs catches up within waitMaxMs; twice that waited means it stalled.
    if (behindMs <= waitMaxMs && this.#rollbackWaitedMs <= 2 * waitMaxMs) return 'rollback';
    if (!started) {
      this.#counts.startRefusals += 1;
      return this.#refuse('SYNOD_ID_CLOCK_BEHIND', `the clock reads ${nowMs}, ${behindMs} ms ` +
        `behind the first timestamp this worker id may use (${this.#tickEndMs}, above the ` +
        `grant's lastUsedMs)`, waitMaxMs);
    }
    this.#counts.rollbackRefusals += 1;
    return this.#refuse('SYNOD_ID_CLOCK_BACKWARDS', `the clock reads ${nowMs}, ${behindMs} ms ` +
      `behind the last id's timestamp ${this.#tickStartMs}`, waitMaxMs);
  }

  #refuse(
    code: 'SYNOD_ID_CLOCK_BACKWARDS' | 'SYNOD_ID_CLOCK_BEHIND', detail: string, waitMaxMs: number,
  ): never {
    throw new SynodError(code, `snowflake ${this.#name}: ${detail}; more than the ${waitMaxMs} ms ` +
      'this generator waits out. Ids resume once the clock passes it.');
  }

  #countWait(blocked: Blocked): void {
    if (blocked === 'overflow') this.#counts.sequenceOverflows += 1;
    else if (blocked === 'rollback') this.#counts.rollbackWaits += 1;
    else this.#counts.reservationWaits += 1;
  }

  /** Reads the clock until it reaches `untilMs`; the last reading falls short of it if the clock
   *  stepped back or stood still for snowflakeSpinReadsMax reads. */
  #spin(untilMs: number): number {
    let nowMs = this.#clock.nowMs();
    for (let reads = 1; nowMs < untilMs && reads < snowflakeSpinReadsMax; reads += 1) {
      const previousMs = nowMs;
      nowMs = this.#clock.nowMs();
      if (nowMs < previousMs) break;
    }
    return nowMs;
  }

  #updateFastPath(): void {
    const open = this.#stopError === null && this.#waiters.length === 0;
    this.#fastStartMs = open ? this.#tickStartMs : Infinity;
    this.#fastEndMs = open ? this.#tickEndMs : -Infinity;
  }

  #enqueue(wanted: number): Promise<bigint[]> {
    if (this.#stopError !== null) return Promise.reject(this.#stopError);
    if (this.#waiters.length >= this.#config.waitersMax) {
      return Promise.reject(new SynodError('SYNOD_ID_WAITERS_EXHAUSTED',
        `snowflake ${this.#name}: ${this.#config.waitersMax} calls already wait`));
    }
    const waiting = new Promise<bigint[]>((resolve, reject) => {
      this.#waiters.push({ wanted, ids: [], resolve, reject });
    });
    this.#updateFastPath();
    if (!this.#draining) void this.#drain();
    return waiting;
  }

  /** Serves the waiters in arrival order, waiting out whatever is in the way between ids. */
  async #drain(): Promise<void> {
    assert(!this.#draining, 'snowflake: one drain loop at a time');
    this.#draining = true;
    try {
      while (this.#waiters.length > 0 && this.#stopError === null) {
        const blocked = this.#serveFirst();
        if (blocked !== null) await this.#waitOut(blocked);
      }
    } catch (error) {
      // A refusal holds for every waiter at this instant. An assertion failure is a bug: it is
      // rethrown, unhandled, and crashes the process.
      if (!isSynodError(error)) throw error;
      this.#rejectWaiters(error);
    } finally {
      this.#draining = false;
      this.#updateFastPath();
    }
  }

  /** Gives the first waiter ids while the clock allows; null once it is served and removed. */
  #serveFirst(): Blocked | null {
    const waiter = this.#waiters[0]!;
    while (waiter.ids.length < waiter.wanted) {
      const blocked = this.#prepare(this.#clock.nowMs());
      if (blocked !== null) return blocked;
      // The unit was current at the reading: all its room may go to this waiter.
      const room = this.#sequenceLimit - this.#sequence;
      const take = Math.min(waiter.wanted - waiter.ids.length, room);
      for (let taken = 0; taken < take; taken += 1) waiter.ids.push(this.#issue());
    }
    this.#waiters.shift();
    waiter.resolve(waiter.ids);
    return null;
  }

  async #waitOut(blocked: Blocked): Promise<void> {
    this.#countWait(blocked);
    if (blocked === 'reservation') {
      await new Promise<void>((resolve) => { this.#wakeDrain = resolve; });
      return;
    }
    const untilMs = this.#resumeAtMs;
    const waitMs = untilMs - this.#clock.nowMs();
    if (blocked === 'rollback') this.#rollbackWaitedMs += Math.max(waitMs, 0);
    if (waitMs > snowflakeSpinWaitMsMax) {
      await this.#sleep(waitMs, this.#stopController.signal);
      return;
    }
    // Let other work run between units, then spin out the rest of the unit.
    await yieldTurn();
    if (this.#stopError !== null || this.#spin(untilMs) >= untilMs) return;
    await this.#sleep(snowflakeSpinWaitMsMax, this.#stopController.signal);
  }

  #wake(): void {
    const wake = this.#wakeDrain;
    this.#wakeDrain = null;
    wake?.();
  }

  #rejectWaiters(error: unknown): void {
    for (const waiter of this.#waiters.splice(0)) waiter.reject(error);
    this.#updateFastPath();
  }

  /** The reservation bound: the grant's own, or an extension's if higher. */
  #reservedUntil(): number {
    const grantedMs = this.#grant.reservedUntilMs;
    if (grantedMs > this.#reservedUntilMs) this.#reservedUntilMs = grantedMs;
    return this.#reservedUntilMs;
  }

  /** Extends in the background once the clock is within half of reservationAheadMs of the bound,
   *  so that callers normally never wait for it. */
  #extendAhead(nowMs: number): void {
    if (this.#reservedUntil() - nowMs > this.#config.reservationAheadMs / 2) return;
    this.#startExtension(nowMs);
  }

  #startExtension(nowMs: number): void {
    if (this.#extending || this.#extendRetryPending || this.#stopError !== null) return;
    this.#extending = true;
    void this.#extend(nowMs + this.#config.reservationAheadMs);
  }

  async #extend(untilMs: number): Promise<void> {
    let boundMs: number;
    try {
      boundMs = await this.#grant.extend(untilMs);
    } catch {
      // The coordinator's error reaches no caller: waiters keep waiting through the retries
      // while the grant holds, and the grant's `lost` is what ends the wait.
      this.#extending = false;
      this.#onExtendFailed();
      return;
    }
    this.#extending = false;
    if (this.#stopError !== null) return;
    if (boundMs > this.#reservedUntilMs) this.#reservedUntilMs = boundMs;
    // A bound short of the request (or not a number) is retried like a failure.
    if (boundMs >= untilMs) this.#extendFailures = 0;
    else this.#onExtendFailed();
    this.#wake();
  }

  #onExtendFailed(): void {
    this.#extendFailures += 1;
    this.#counts.extensionFailures += 1;
    if (this.#stopError !== null) return;
    const bounds = {
      firstMs: this.#config.extendRetryDelayMs, maxMs: this.#config.extendRetryDelayMsMax,
    };
    const delayMs = backoffDelayMs(this.#extendFailures - 1, bounds, this.#random);
    this.#extendRetryPending = true;
    const retry = (): void => {
      this.#extendRetryPending = false;
      // Still needed if a waiter is blocked on the bound or the clock is near it.
      if (this.#stopError === null) this.#extendAhead(this.#clock.nowMs());
    };
    void this.#sleep(delayMs, this.#stopController.signal).then(retry, retry);
  }
}
