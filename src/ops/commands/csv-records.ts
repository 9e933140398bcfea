// A small CSV reader for device lists (RFC 4180): a header row, then one record per device. Fields are separated
// by the header's delimiter (a comma, or a semicolon as spreadsheets in many locales and The Things Stack's CSV
// write it); a quoted field may hold the delimiter, newlines and "" for a quote. Each record keeps the line it
// starts on, so a bad row is named by line. Blank lines are skipped; a byte-order mark is dropped.
import { CommandError } from './command-error.ts';

export interface CsvRecord {
  readonly line: number;
  readonly fields: readonly string[];
}

export interface CsvTable {
  readonly header: CsvRecord;
  readonly records: readonly CsvRecord[];
}

/** CommandError (exit 2) naming the line when a quote is never closed or there is no header. */
export function readCsv(text: string, file: string): CsvTable {
  const body = text.startsWith('\uFEFF') ? text.slice(1) : text;
  const firstLine = body.slice(0, body.indexOf('\n') === -1 ? body.length : body.indexOf('\n'));
  const delimiter = firstLine.split(';').length > firstLine.split(',').length ? ';' : ',';
  const rows: CsvRecord[] = [];
  let position = 0;
  let line = 1;
  while (position < body.length) {
    const startLine = line;
    const fields: string[] = [];
    let field = '';
    let quoted = false;
    let quoteLine = line;
    for (; position < body.length; position += 1) {
      const char = body[position] as string;
      if (quoted) {
        if (char === '"' && body[position + 1] === '"') {
          field += '"';
          position += 1;
        } else if (char === '"') quoted = false;
        else {
          if (char === '\n') line += 1;
          field += char;
        }
      } else if (char === '"' && field.trim() === '') {
        quoted = true;
        quoteLine = line;
        field = '';
      } else if (char === delimiter) {
        fields.push(field.trim());
        field = '';
      } else if (char === '\n') break;
      else if (char !== '\r') field += char;
    }
    if (quoted) throw new CommandError(`${file}:${quoteLine}: malformed CSV: the quoted field that starts here is never closed (a missing ")`, 2);
    fields.push(field.trim());
    position += 1;
    line += 1;
    if (fields.length > 1 || fields[0] !== '') rows.push({ line: startLine, fields });
  }
  const [header, ...records] = rows;
  if (header === undefined) throw new CommandError(`${file}: no CSV header: the first line must name the columns (dev_eui, ...)`, 2);
  return { header, records };
}
