import { describe, expect, it } from 'vitest';
import { formatNetwork, networkOf } from './network-prefix.js';

describe('networkOf', () => {
  it('groups IPv4 addresses by prefix, and takes IPv4-mapped IPv6 as IPv4', () => {
    const a = networkOf('192.0.2.17', 24, 64);
    expect(a).toBe(networkOf('192.0.2.250', 24, 64));
    expect(a).toBe(networkOf('::ffff:192.0.2.9', 24, 64));
    expect(a).not.toBe(networkOf('192.0.3.17', 24, 64));
    expect(formatNetwork(a!, 24)).toBe('192.0.2.0/24');
    expect(formatNetwork(networkOf('203.0.113.200', 25, 64)!, 25)).toBe('203.0.113.128/25');
    expect(formatNetwork(networkOf('255.255.255.255', 32, 64)!, 32)).toBe('255.255.255.255/32');
  });

  it('groups IPv6 addresses by prefix, whatever their spelling', () => {
    expect(networkOf('2001:db8:1:2::17', 24, 64)).toBe('2001:db8:1:2::/64');
    expect(networkOf('2001:0DB8:0001:0002:aaaa:bbbb:cccc:dddd', 24, 64)).toBe('2001:db8:1:2::/64');
    expect(networkOf('2001:db8:1:2::1%eth0', 24, 64)).toBe('2001:db8:1:2::/64');
    expect(networkOf('2001:db8:1:ff::1', 24, 56)).toBe('2001:db8:1:0::/56');
    expect(networkOf('::1', 24, 128)).toBe('0:0:0:0:0:0:0:1/128');
  });

  it('answers undefined for what is not an address', () => {
    for (const bad of [
      '',
      'localhost',
      '1.2.3',
      '1.2.3.4.5',
      '256.1.1.1',
      '1..2.3',
      '1:2:3',
      '1::2::3',
      'g::1',
      '12345::',
    ]) {
      expect(networkOf(bad, 24, 64), bad).toBeUndefined();
    }
  });
});
