/**
 * Backend addresses as operators write them: `host:port`, the host an IPv4
 * address, an IPv6 address in brackets (`[fd00::7]:8000`, as in a URL) or a
 * DNS name. A DNS name here is what Envoy's resolver is asked
 * for (RFC 1123 host names: dot-separated labels of letters, digits and
 * inner hyphens, each 1-63 characters, at most 253 in all, a trailing dot
 * allowed); one made of digits and dots only is a malformed IPv4 address,
 * not a name, so `10.0.0.256` is refused rather than looked up.
 */
import { isIPv4, isIPv6 } from 'node:net';

const LABEL = /^[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?$/;

export function isDnsName(host: string): boolean {
  const name = host.endsWith('.') ? host.slice(0, -1) : host;
  if (name.length === 0 || name.length > 253) return false;
  if (/^[0-9.]+$/.test(name)) return false;
  return name.split('.').every((l) => LABEL.test(l));
}

export interface HostPort {
  readonly host: string;
  readonly port: number;
  /** How Envoy reaches it: an address as is, or a name it resolves. */
  readonly kind: 'ip' | 'dns';
}

/**
 * `10.0.0.7:8000`, `[fd00::7]:8000` or `vllm.models.svc:8000` → its parts (an IPv6 host without its brackets);
 * null when it is none of them (port 1-65535). An IPv6 address without brackets is refused: its last group could
 * be read as the port.
 */
export function parseHostPort(text: string): HostPort | null {
  const colon = text.lastIndexOf(':');
  if (colon <= 0) return null;
  const host = text.slice(0, colon);
  const portText = text.slice(colon + 1);
  if (!/^\d{1,5}$/.test(portText)) return null;
  const port = Number(portText);
  if (port < 1 || port > 65_535) return null;
  if (isIPv4(host)) return { host, port, kind: 'ip' };
  if (host.startsWith('[') && host.endsWith(']')) {
    const inner = host.slice(1, -1);
    // A zone (`fe80::1%eth0`) names an interface of one machine: meaningless to an Envoy elsewhere.
    return isIPv6(inner) && !inner.includes('%') ? { host: inner, port, kind: 'ip' } : null;
  }
  return isDnsName(host) ? { host, port, kind: 'dns' } : null;
}
