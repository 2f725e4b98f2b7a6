import { describe, expect, it } from 'vitest';
import { taskKeysFixture } from '../task-tokens/test-support/task-keys-fixture.js';
import { CertService } from './cert-service.js';

describe('client certificates name the role incarnation they were issued for', () => {
  it('verify returns the role id recorded at issue; a certificate custos has no sealed record of is refused', async () => {
    const { store, barrier } = await taskKeysFixture();
    const certs = await CertService.load({ storage: { entries: store }, cipher: barrier }, 'custos.local');
    const issued = await certs.issue({ name: 'gpu-node', id: 'rol_first' }, 3_600_000);
    await expect(certs.verify(issued.cert_pem)).resolves.toMatchObject({ role: 'gpu-node', roleId: 'rol_first' });

    // A row written by an earlier build held the role name in clear: the
    // certificate belongs to the role's first incarnation (no id).
    await store.put('cert.issued', issued.serial, new TextEncoder().encode('gpu-node'));
    const legacy = await certs.verify(issued.cert_pem);
    expect(legacy.roleId).toBeUndefined();
    // A clear row naming another role, or no row at all, is refused.
    await store.put('cert.issued', issued.serial, new TextEncoder().encode('other-role'));
    await expect(certs.verify(issued.cert_pem)).rejects.toMatchObject({ code: 'CUSTOS_ERR_UNAUTHENTICATED' });
    await store.delete('cert.issued', issued.serial);
    await expect(certs.verify(issued.cert_pem)).rejects.toMatchObject({
      code: 'CUSTOS_ERR_UNAUTHENTICATED',
      auditReason: 'unknown_serial',
    });
  });
});
