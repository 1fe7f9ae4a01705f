// Host id ranges for instances that run in a user namespace with
// `security.userNamespace: true`. The agent's pool (--userns-range
// BASE:SIZExCOUNT, e.g. 100000000:65536x1000) is COUNT slots of SIZE ids from
// BASE; each such instance gets a slot of its own (uid and gid alike) until it
// is removed. The allocation is kept in the container's annotations, so an
// agent restart finds the slots of the containers it adopts again (claim()).

/** A host id range: container ids 0..size-1 are host uids hostUid.. and gids hostGid... */
export interface UsernsRange {
  hostUid: number;
  hostGid: number;
  size: number;
}

export interface UsernsPoolOptions {
  /** First host id of the pool. */
  base: number;
  /** Ids per slot (65536: a whole 16-bit id space per instance). */
  size: number;
  /** Number of slots. */
  count: number;
}

export const DEFAULT_USERNS_RANGE = "100000000:65536x1000";
const MAX_ID = 2 ** 32;

/** "BASE:SIZExCOUNT" -> options; throws naming what is wrong. */
export function parseUsernsRange(text: string): UsernsPoolOptions {
  const m = /^(\d+):(\d+)x(\d+)$/.exec(text.trim());
  if (!m)
    throw new Error(`--userns-range ${JSON.stringify(text)} must be BASE:SIZExCOUNT, e.g. ${DEFAULT_USERNS_RANGE}`);
  const [base, size, count] = [Number(m[1]), Number(m[2]), Number(m[3])];
  if (base < 1) throw new Error(`--userns-range: BASE must be at least 1 (0 would map container root to host root)`);
  if (size < 1 || count < 1) throw new Error(`--userns-range: SIZE and COUNT must be at least 1`);
  if (base + size * count > MAX_ID) {
    throw new Error(`--userns-range: ${count} slots of ${size} ids from ${base} run past the last id (${MAX_ID - 1})`);
  }
  return { base, size, count };
}

export class UsernsPool {
  /** slot -> owner (instance uid) */
  private readonly owners = new Map<number, string>();
  /** owner -> slot */
  private readonly slots = new Map<string, number>();

  constructor(readonly options: UsernsPoolOptions) {}

  /** The owner's range, allocating the lowest free slot the first time. Throws when the pool is full. */
  allocate(owner: string): UsernsRange {
    const have = this.slots.get(owner);
    if (have !== undefined) return this.rangeOf(have);
    for (let slot = 0; slot < this.options.count; slot++) {
      if (!this.owners.has(slot)) {
        this.owners.set(slot, owner);
        this.slots.set(owner, slot);
        return this.rangeOf(slot);
      }
    }
    throw new Error(`no free user namespace range: all ${this.options.count} slots of --userns-range are in use`);
  }

  /**
   * Marks a range found on a container after a restart as the owner's. Returns
   * false (and records nothing) when it is not a slot of this pool, or when
   * another owner holds it already.
   */
  claim(owner: string, range: UsernsRange): boolean {
    const slot = this.slotOf(range);
    if (slot === undefined) return false;
    const holder = this.owners.get(slot);
    if (holder !== undefined) return holder === owner;
    const previous = this.slots.get(owner);
    if (previous !== undefined) this.owners.delete(previous);
    this.owners.set(slot, owner);
    this.slots.set(owner, slot);
    return true;
  }

  /** Frees the owner's slot (nothing when it has none). */
  release(owner: string): void {
    const slot = this.slots.get(owner);
    if (slot === undefined) return;
    this.slots.delete(owner);
    this.owners.delete(slot);
  }

  /** The owner's range, when it holds one. */
  rangeOwnedBy(owner: string): UsernsRange | undefined {
    const slot = this.slots.get(owner);
    return slot === undefined ? undefined : this.rangeOf(slot);
  }

  /** Slots in use. */
  get used(): number {
    return this.owners.size;
  }

  /** An explicit range that shares ids with the pool (uids or gids): it could collide with an allocation. */
  overlaps(range: UsernsRange): boolean {
    const lo = this.options.base;
    const hi = this.options.base + this.options.size * this.options.count;
    const hits = (start: number) => start < hi && lo < start + range.size;
    return hits(range.hostUid) || hits(range.hostGid);
  }

  private rangeOf(slot: number): UsernsRange {
    const id = this.options.base + slot * this.options.size;
    return { hostUid: id, hostGid: id, size: this.options.size };
  }

  private slotOf(range: UsernsRange): number | undefined {
    const { base, size, count } = this.options;
    const offset = range.hostUid - base;
    if (range.hostGid !== range.hostUid || range.size !== size || offset < 0 || offset % size !== 0) return undefined;
    const slot = offset / size;
    return slot < count ? slot : undefined;
  }
}
