// How deeply a JSON text nests, found by scanning its bytes once (strings skipped), before JSON.parse builds
// it. JSON.parse itself copes with deep nesting, but whatever walks the result recursively afterwards
// (JSON.stringify of a record, a deep compare) overflows the stack on a few thousand levels of [[[[...]]]].

/** True when `text` nests objects and arrays deeper than `maxDepth` (it need not be valid JSON). */
export function nestsDeeperThan(text: string, maxDepth: number): boolean {
  let depth = 0;
  let inString = false;
  for (let index = 0; index < text.length; index++) {
    const code = text.charCodeAt(index);
    if (inString) {
      if (code === 0x5c)
        index += 1; // backslash: skip the escaped character
      else if (code === 0x22) inString = false;
      continue;
    }
    if (code === 0x22) inString = true;
    else if (code === 0x7b || code === 0x5b) {
      depth += 1;
      if (depth > maxDepth) return true;
    } else if (code === 0x7d || code === 0x5d) depth -= 1;
  }
  return false;
}
