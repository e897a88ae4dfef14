/**
 * The JSON store's addresses in order, for a listing paged by address (AccountFilter.after):
 * sorted once and kept until an account comes or goes, so paging through every record
 * (`autoport state export`) sorts once, not once per page.
 */
export class KeyOrder {
  private sorted: string[] | undefined;

  constructor(private readonly keys: () => Iterable<string>) {}

  /** an account was added or removed */
  invalidate(): void {
    this.sorted = undefined;
  }

  /** the addresses after `after`, in code-unit order */
  *after(after: string): Generator<string> {
    const sorted = (this.sorted ??= Array.from(this.keys()).sort());
    let lo = 0;
    let hi = sorted.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (sorted[mid]! <= after) lo = mid + 1;
      else hi = mid;
    }
    // a copy of the reference: an invalidation while the caller iterates does not move it
    for (let i = lo; i < sorted.length; i++) yield sorted[i]!;
  }
}
