/**
 * Class names: from the model's ONNX metadata (`names`, as Ultralytics writes it), else a labels file, else ids.
 */
import { OspreyError } from './errors.js';

function unquotePython(lit: string): string {
  const body = lit.slice(1, -1);
  return body.replace(/\\(x[0-9a-fA-F]{2}|u[0-9a-fA-F]{4}|.)/g, (_m, e: string) => {
    if (e[0] === 'x' || e[0] === 'u') return String.fromCharCode(parseInt(e.slice(1), 16));
    return e === 'n' ? '\n' : e === 't' ? '\t' : e;
  });
}

/**
 * Parses class names as Ultralytics stores them in ONNX `metadata_props.names`: the Python repr of a dict,
 * e.g. `{0: 'person', 1: 'bicycle', 2: "people's"}`. JSON lists (`["person", ...]`) and JSON objects
 * (`{"0": "person"}`) are accepted too.
 *
 * @returns names indexed by class id (gaps filled with the id as a string).
 * @throws OspreyError `OSPREY_ERR_LABELS` when nothing can be parsed.
 */
export function parseClassNames(text: string): string[] {
  const t = text.trim();
  if (t.startsWith('[')) {
    try {
      const arr = JSON.parse(t) as unknown;
      if (Array.isArray(arr) && arr.every((x) => typeof x === 'string')) return arr as string[];
    } catch {
      /* fall through to the Python-literal parser */
    }
  }
  const entries = new Map<number, string>();
  const re = /["']?(\d+)["']?\s*:\s*('(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*")/g;
  for (let m = re.exec(t); m; m = re.exec(t)) entries.set(Number(m[1]), unquotePython(m[2]!));
  if (entries.size === 0) throw new OspreyError('OSPREY_ERR_LABELS', `cannot parse class names from metadata: ${t.slice(0, 80)}`);
  const max = Math.max(...entries.keys());
  const names: string[] = [];
  for (let i = 0; i <= max; i++) names.push(entries.get(i) ?? String(i));
  return names;
}

/**
 * Resolves the class names of a model with `numClasses` classes (0 = unknown, take whatever the source gives).
 * Order of preference: metadata `names`, then a labels file (one name per line, blank lines ignored), then ids.
 *
 * @throws OspreyError `OSPREY_ERR_LABELS` when a labels file has a different number of names than the model classes.
 */
export function resolveClassNames(numClasses: number, metadata: Readonly<Record<string, string>>, labelsText?: string): string[] {
  if (labelsText !== undefined) {
    const lines = labelsText.split(/\r?\n/).map((l) => l.trim()).filter((l) => l.length > 0);
    if (numClasses > 0 && lines.length !== numClasses) {
      throw new OspreyError('OSPREY_ERR_LABELS', `labels file has ${lines.length} names but the model has ${numClasses} classes`, {
        labels: lines.length,
        classes: numClasses,
      });
    }
    return lines;
  }
  if (metadata.names !== undefined) {
    const names = parseClassNames(metadata.names);
    if (numClasses <= 0 || names.length === numClasses) return names;
    if (names.length > numClasses) return names.slice(0, numClasses);
    return names.concat(Array.from({ length: numClasses - names.length }, (_, i) => String(names.length + i)));
  }
  return Array.from({ length: numClasses }, (_, i) => String(i));
}
