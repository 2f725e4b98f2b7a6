import { type IpBytes, inPrefix, parseIp } from './ip-address.js';

/**
 * What an address is, for the egress policy. Everything but `public` is
 * refused unless an operator allowed it explicitly.
 */
export type AddressClass =
  | 'public'
  | 'loopback'
  | 'unspecified'
  | 'link-local'
  | 'private'
  | 'multicast'
  | 'reserved'
  | 'documentation';

/** How a refusal names each class (after "is a" / "resolves to a"). */
export const ADDRESS_CLASS_LABEL: Readonly<Record<Exclude<AddressClass, 'public'>, string>> = {
  loopback: 'loopback address',
  unspecified: 'unspecified (this-host) address',
  'link-local': 'link-local address (cloud metadata lives there)',
  private: 'private address',
  multicast: 'multicast address',
  reserved: 'reserved address',
  documentation: 'documentation address',
};

interface Range {
  network: IpBytes;
  bits: number;
  kind: Exclude<AddressClass, 'public'> | 'embedded-v4';
}

const range = (cidr: string, kind: Range['kind']): Range => {
  const [net, bits] = cidr.split('/') as [string, string];
  return { network: parseIp(net) as IpBytes, bits: Number(bits), kind };
};

/** IANA special-purpose IPv4 ranges (RFC 6890 and successors) that must not be reached by default. */
const IPV4: readonly Range[] = [
  range('0.0.0.0/8', 'unspecified'), // "this network": 0.0.0.0 reaches the local host on Linux
  range('10.0.0.0/8', 'private'),
  range('100.64.0.0/10', 'private'), // carrier-grade NAT (RFC 6598); Alibaba's metadata is 100.100.100.200
  range('127.0.0.0/8', 'loopback'),
  range('169.254.0.0/16', 'link-local'), // 169.254.169.254: AWS, GCP, Azure instance metadata
  range('172.16.0.0/12', 'private'),
  range('192.0.0.0/24', 'reserved'), // IETF protocol assignments (incl. NAT64 discovery)
  range('192.0.2.0/24', 'documentation'),
  range('192.88.99.0/24', 'reserved'), // deprecated 6to4 relay anycast
  range('192.168.0.0/16', 'private'),
  range('198.18.0.0/15', 'reserved'), // benchmarking
  range('198.51.100.0/24', 'documentation'),
  range('203.0.113.0/24', 'documentation'),
  range('224.0.0.0/4', 'multicast'),
  range('240.0.0.0/4', 'reserved'), // incl. 255.255.255.255
];

/**
 * IPv6 ranges. Forms that carry an IPv4 address (mapped, compatible,
 * SIIT-translated, NAT64, 6to4) are judged by that IPv4 address: `::ffff:127.0.0.1`
 * is loopback, `64:ff9b::a9fe:a9fe` is the metadata service behind a NAT64.
 * Anything outside global unicast (2000::/3) is reserved.
 */
const IPV6: readonly Range[] = [
  range('::/128', 'unspecified'),
  range('::1/128', 'loopback'),
  range('::ffff:0:0/96', 'embedded-v4'), // IPv4-mapped
  range('::ffff:0:0:0/96', 'embedded-v4'), // IPv4-translated (SIIT)
  range('::/96', 'embedded-v4'), // IPv4-compatible (deprecated)
  range('64:ff9b::/96', 'embedded-v4'), // NAT64 well-known prefix
  range('64:ff9b:1::/48', 'private'), // NAT64 local-use prefix
  range('100::/64', 'reserved'), // discard-only
  range('2001:db8::/32', 'documentation'),
  range('2001::/23', 'reserved'), // IETF protocol assignments, incl. Teredo (2001::/32)
  range('2002::/16', 'embedded-v4'), // 6to4: the IPv4 address is in bytes 2–5
  range('3fff::/20', 'documentation'),
  range('5f00::/16', 'reserved'), // SRv6 SIDs
  range('fc00::/7', 'private'), // unique local (AWS IMDS: fd00:ec2::254)
  range('fe80::/10', 'link-local'),
  range('fec0::/10', 'private'), // deprecated site-local
  range('ff00::/8', 'multicast'),
];
const GLOBAL_UNICAST = range('2000::/3', 'reserved');

/**
 * The IPv4 address an IPv6 address stands for, if it is one of the forms
 * that embed one; undefined otherwise (and for IPv4 itself).
 */
export function embeddedIpv4(address: IpBytes): IpBytes | undefined {
  if (address.length !== 16) return undefined;
  for (const r of IPV6) {
    if (r.kind !== 'embedded-v4' || !inPrefix(address, r.network, r.bits)) continue;
    // :: and ::1 sit inside ::/96 but are not IPv4-compatible addresses.
    if (r.bits === 96 && r.network.every((b) => b === 0) && address.subarray(0, 15).every((b) => b === 0)) {
      if ((address[15] as number) <= 1) return undefined;
    }
    return r.bits === 16 ? address.slice(2, 6) : address.slice(12, 16);
  }
  return undefined;
}

/** Classifies an address (IPv4 or IPv6 bytes). */
export function classifyAddress(address: IpBytes): AddressClass {
  const v4 = address.length === 4 ? address : embeddedIpv4(address);
  if (v4) {
    for (const r of IPV4) if (inPrefix(v4, r.network, r.bits)) return r.kind as AddressClass;
    return 'public';
  }
  for (const r of IPV6) {
    if (r.kind !== 'embedded-v4' && inPrefix(address, r.network, r.bits)) return r.kind;
  }
  return inPrefix(address, GLOBAL_UNICAST.network, GLOBAL_UNICAST.bits) ? 'public' : 'reserved';
}
