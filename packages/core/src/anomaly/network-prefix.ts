/**
 * The network an address belongs to, at a prefix length: a number for IPv4
 * (the masked 32-bit address, so no string is built), a string such as
 * `2001:db8:1:2::/64` for IPv6. An IPv4-mapped IPv6 address
 * (`::ffff:192.0.2.1`, how a dual-stack socket reports IPv4 callers) is
 * taken as the IPv4 address, so one caller is not two networks.
 * Returns undefined for anything that is not an address (never throws:
 * the value comes from the request).
 */
export function networkOf(address: string, ipv4Prefix: number, ipv6Prefix: number): number | string | undefined {
  if (address.includes(':')) {
    const lower = address.toLowerCase();
    if (lower.startsWith('::ffff:') && lower.includes('.')) return ipv4Network(lower.slice(7), ipv4Prefix);
    return ipv6Network(lower, ipv6Prefix);
  }
  return ipv4Network(address, ipv4Prefix);
}

function ipv4Network(address: string, prefix: number): number | undefined {
  let value = 0;
  let octet = -1;
  let octets = 0;
  for (let i = 0; i <= address.length; i++) {
    const c = i < address.length ? address.charCodeAt(i) : 46;
    if (c === 46) {
      if (octet < 0 || octet > 255) return undefined;
      value = value * 256 + octet;
      octets++;
      octet = -1;
    } else if (c >= 48 && c <= 57) {
      octet = (octet < 0 ? 0 : octet * 10) + (c - 48);
      if (octet > 255) return undefined;
    } else return undefined;
  }
  if (octets !== 4) return undefined;
  // Masked with arithmetic, not bit operators: these work on signed 32-bit numbers.
  const size = 2 ** (32 - prefix);
  return Math.floor(value / size) * size;
}

function ipv6Network(address: string, prefix: number): string | undefined {
  // A zone (`fe80::1%eth0`) names the interface, not the network.
  const zone = address.indexOf('%');
  const text = zone >= 0 ? address.slice(0, zone) : address;
  const halves = text.split('::');
  if (halves.length > 2) return undefined;
  const head = halves[0] ? halves[0].split(':') : [];
  const tail = halves.length === 2 && halves[1] ? halves[1].split(':') : [];
  const missing = 8 - head.length - tail.length;
  if (halves.length === 1 ? missing !== 0 : missing < 1) return undefined;
  const groups: number[] = [];
  for (const part of head) groups.push(hextet(part));
  for (let i = 0; i < (halves.length === 2 ? missing : 0); i++) groups.push(0);
  for (const part of tail) groups.push(hextet(part));
  if (groups.some((g) => g < 0)) return undefined;
  const kept = Math.ceil(prefix / 16);
  const out: string[] = [];
  for (let i = 0; i < kept; i++) {
    const bits = Math.min(16, prefix - i * 16);
    const mask = bits === 16 ? 0xffff : (0xffff << (16 - bits)) & 0xffff;
    out.push((groups[i]! & mask).toString(16));
  }
  return `${out.join(':')}${kept < 8 ? '::' : ''}/${prefix}`;
}

function hextet(part: string): number {
  if (!/^[0-9a-f]{1,4}$/.test(part)) return -1;
  return Number.parseInt(part, 16);
}

/** The network as text for an explanation: `192.0.2.0/24`, or the IPv6 key as is. */
export function formatNetwork(network: number | string, ipv4Prefix: number): string {
  if (typeof network === 'string') return network;
  return `${Math.floor(network / 16_777_216)}.${Math.floor(network / 65_536) % 256}.${Math.floor(network / 256) % 256}.${network % 256}/${ipv4Prefix}`;
}
