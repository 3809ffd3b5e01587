/**
 * The names a request path (below a static prefix, still percent-encoded)
 * asks for, one per segment, decoded (a final slash adds none). Undefined for any path that could name something outside the served
 * directory, or that a static server has no business serving:
 *
 * - an empty segment (`a//b`): `//host/` after a redirect is a link to
 *   another site;
 * - an encoded slash, backslash or NUL (`%2f`, `%5c`, `%00`), which would
 *   turn one segment into several, or end a C string early;
 * - a raw backslash: Windows reads it as a separator;
 * - a decoded name that starts with a dot: `.` and `..` (also as `%2e%2e`)
 *   climb, and dotfiles (`.env`, `.git`) are never meant for the web;
 * - a colon: a drive (`C:`) or an NTFS stream (`file::$DATA`) on Windows.
 *
 * What the names point to is checked afterwards, against the real path of
 * the directory: a symlink can still lead out (see StaticFiles).
 */
export function requestedNames(rest: string): string[] | undefined {
  if (rest.includes('\\')) return undefined;
  const segments = rest === '' ? [] : rest.split('/');
  if (rest.endsWith('/')) segments.pop();
  const names: string[] = [];
  for (const segment of segments) {
    if (segment === '' || /%(2f|5c|00)/i.test(segment)) return undefined;
    let name: string;
    try {
      name = decodeURIComponent(segment);
    } catch {
      return undefined;
    }
    if (name.startsWith('.') || /[/\\:\0]/.test(name)) return undefined;
    names.push(name);
  }
  return names;
}
