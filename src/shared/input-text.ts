// Strings that come from outside (usernames, client ids, topics, EUIs, formatter output) on their way into
// logs, cache keys and terminals: cut to a bound, copied so that the cut does not keep the whole original
// alive, and with control characters escaped where a person will read them.

/**
 * The first `maxChars` characters as a string of their own. V8 represents `slice` of a long string as a view
 * into it, so a 160-character key cut from a 64 KiB username would keep all 64 KiB alive.
 */
export function boundedText(value: string, maxChars: number): string {
  if (value.length <= maxChars) return value;
  return Buffer.from(value.slice(0, maxChars), 'utf8').toString('utf8');
}

// C0 and C1 controls, DEL, and the Unicode format characters that reorder or hide text (bidi overrides,
// zero-width joiners, BOM): a terminal or a log viewer would act on them.
// biome-ignore lint/suspicious/noControlCharactersInRegex: matching control characters is this expression's job
const UNPRINTABLE = /[\u0000-\u001f\u007f-\u009f\u200b-\u200f\u2028-\u202e\u2060-\u206f\ufeff]/g;

/** For people to read: control characters as \u escapes, at most `maxChars`, with how much was cut. */
export function printable(value: string, maxChars = 128): string {
  const cut = value.length > maxChars ? `... (${value.length - maxChars} more characters)` : '';
  const escaped = boundedText(value, maxChars).replace(UNPRINTABLE, (character) => `\\u${character.charCodeAt(0).toString(16).padStart(4, '0')}`);
  return `${escaped}${cut}`;
}
