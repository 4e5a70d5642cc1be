/** Request paths as families read them. Imports nothing, so endpoint tables can use it and stay light. */

/** The path without its query string. */
export function pathOnly(rawPath: string): string {
  const q = rawPath.indexOf('?');
  return q === -1 ? rawPath : rawPath.slice(0, q);
}

/** One percent-encoded path segment (a model id), or null when empty, too long or malformed. */
export function decodePathSegment(s: string): string | null {
  if (s === '' || s.length > 256) return null;
  try {
    return decodeURIComponent(s);
  } catch {
    return null;
  }
}
