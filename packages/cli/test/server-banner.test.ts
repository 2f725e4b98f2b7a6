import { describe, expect, it } from 'vitest';
import { formatServerBanner, type ServerBannerInput } from '../src/server-banner.js';

const base: ServerBannerInput = {
  address: 'http://127.0.0.1:8420',
  version: '0.1.0',
  seal: 'dev',
  initialized: true,
  sealed: false,
  dataDir: '/home/dev/app/.custos',
  cwd: '/home/dev/app',
  cli: 'custos',
};

describe('the server banner', () => {
  it('names the address, the token file (not the token), the export lines and a first command', () => {
    const text = formatServerBanner(base);
    expect(text).toContain('custos 0.1.0 is listening on http://127.0.0.1:8420');
    expect(text).toContain('Root token:  ./.custos/root-token');
    expect(text).toContain('export CUSTOS_ADDR=http://127.0.0.1:8420');
    expect(text).toContain('# in this directory the CLI reads the token itself; elsewhere:');
    expect(text).toContain('export CUSTOS_TOKEN="$(cat /home/dev/app/.custos/root-token)"');
    expect(text).toContain('custos secret put kv/hello greeting=world');
  });

  it('names the credential proxy when it listens, and not otherwise', () => {
    expect(formatServerBanner({ ...base, proxyAddress: 'http://0.0.0.0:8421' })).toContain(
      'Credential proxy: http://127.0.0.1:8421/u/NAME/…',
    );
    expect(formatServerBanner(base)).not.toContain('Credential proxy');
  });

  it('says npx custos when started by npm, and a client address for a wildcard listener', () => {
    const text = formatServerBanner({ ...base, cli: 'npx custos', address: 'http://0.0.0.0:8420' });
    expect(text).toContain('export CUSTOS_ADDR=http://127.0.0.1:8420');
    expect(text).toContain('npx custos secret get kv/hello');
  });

  it('quotes a data directory a shell would split, and says the CLI will not find it alone', () => {
    const text = formatServerBanner({ ...base, dataDir: "/srv/my data/it's" });
    expect(text).toContain(`export CUSTOS_TOKEN="$(cat '/srv/my data/it'\\''s/root-token')"`);
    expect(text).toContain('the CLI does not find the token by itself');
  });

  it('points a shamir server to init or unseal, with no token file', () => {
    const shamir = { ...base, seal: 'shamir' as const };
    const uninitialised = formatServerBanner({ ...shamir, initialized: false, sealed: true });
    expect(uninitialised).toContain('custos operator init');
    expect(uninitialised).not.toContain('root-token');
    expect(formatServerBanner({ ...shamir, sealed: true })).toContain('custos operator unseal');
  });
});
