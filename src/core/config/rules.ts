// Value rules of configuration keys: each says in words what it allows and parses a raw value (from JSON,
// TOML or `--set`) into the typed value, or INVALID. The key table (keys.ts) derives its types from them.

export const INVALID: unique symbol = Symbol('invalid');
export type Invalid = typeof INVALID;

export interface Rule<T> {
  /** What the rule allows, for error messages ("allowed: …"). */
  allowed: string;
  parse(v: unknown): T | Invalid;
}

export const isNum = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v);
export const isInt = (v: unknown): v is number => typeof v === 'number' && Number.isSafeInteger(v);

export function oneOf<const V extends string>(...values: readonly V[]): Rule<V> {
  return {
    allowed: `one of ${values.map((s) => `'${s}'`).join(', ')}`,
    parse: (v) => ((values as readonly unknown[]).includes(v) ? (v as V) : INVALID),
  };
}

export function int(min: number, max = Number.MAX_SAFE_INTEGER): Rule<number> {
  const allowed = max === Number.MAX_SAFE_INTEGER ? `an integer ≥ ${min}` : `an integer in [${min}, ${max}]`;
  return { allowed, parse: (v) => (isInt(v) && v >= min && v <= max ? v : INVALID) };
}

/** A finite number in the given interval; `hi` undefined = unbounded above, `*Open` = strict. */
export function num(lo: number, loOpen: boolean, hi?: number, hiOpen = false): Rule<number> {
  const allowed =
    hi === undefined ? `a number ${loOpen ? '>' : '≥'} ${lo}` : `a number in ${loOpen ? '(' : '['}${lo}, ${hi}${hiOpen ? ')' : ']'}`;
  const ok = (v: number) => (loOpen ? v > lo : v >= lo) && (hi === undefined || (hiOpen ? v < hi : v <= hi));
  return { allowed, parse: (v) => (isNum(v) && ok(v) ? v : INVALID) };
}

export const bool: Rule<boolean> = { allowed: 'true or false', parse: (v) => (typeof v === 'boolean' ? v : INVALID) };

/** The rule, or one literal value (null, 'auto', 'epoch', …) described by `label`. */
export function or<T, const L extends string | null>(rule: Rule<T>, literal: L, label: string): Rule<T | L> {
  return { allowed: `${rule.allowed}, or ${label}`, parse: (v) => (v === literal ? literal : rule.parse(v)) };
}

export function nonEmptyString(what: string): Rule<string> {
  return { allowed: what, parse: (v) => (typeof v === 'string' && v.trim() !== '' ? v : INVALID) };
}

/** An array whose every element passes `item` (`minLength` elements at least). */
export function arrayOf<T>(item: Rule<T>, allowed: string, minLength = 0): Rule<T[]> {
  return {
    allowed,
    parse: (v) => {
      if (!Array.isArray(v) || v.length < minLength) return INVALID;
      const out: T[] = [];
      for (const e of v) {
        const p = item.parse(e);
        if (p === INVALID) return INVALID;
        out.push(p);
      }
      return out;
    },
  };
}

/** An array of `item`, or a single item taken as a one-element array. */
export function oneOrMany<T>(item: Rule<T>, allowed: string): Rule<T[]> {
  const many = arrayOf(item, allowed, 1);
  return {
    allowed,
    parse: (v) => {
      if (Array.isArray(v)) return many.parse(v);
      const one = item.parse(v);
      return one === INVALID ? INVALID : [one];
    },
  };
}
