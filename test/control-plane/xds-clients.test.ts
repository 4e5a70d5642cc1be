/** Which verified Envoy certificates may take clusters over ADS: SPIFFE ID exact or by prefix, or the exact subject. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { allowedXdsClients, xdsClientCheck } from '../../src/control-plane/xds-clients.ts';

const cert = (uriSans: string[], subject: string | null = null) => ({ uriSans, subject, sha256: '0'.repeat(64) });

test('SPIFFE IDs match exactly or under a /* prefix; subjects exactly; anything else is refused', () => {
  const check = xdsClientCheck(
    allowedXdsClients([
      { spiffeId: 'spiffe://prod.example.org/ns/gw/sa/envoy' },
      { spiffeId: 'spiffe://prod.example.org/ns/edge/*' },
      { subject: 'CN=envoy,O=Acme' },
    ]),
  );
  assert.equal(check(cert(['spiffe://prod.example.org/ns/gw/sa/envoy'])), 'spiffe://prod.example.org/ns/gw/sa/envoy');
  assert.equal(check(cert(['spiffe://prod.example.org/ns/edge/sa/a'])), 'spiffe://prod.example.org/ns/edge/*');
  assert.equal(check(cert([], 'CN=envoy,O=Acme')), 'CN=envoy,O=Acme');
  assert.equal(check(cert(['spiffe://prod.example.org/ns/gw/sa/other'])), null, 'another workload');
  assert.equal(check(cert(['spiffe://prod.example.org/ns/edgeX/sa/a'])), null, 'a prefix matches whole segments');
  assert.equal(check(cert(['spiffe://prod.example.org/ns/gw/sa/envoy', 'spiffe://x/y'])), null, 'two URI SANs: ambiguous, refused');
  assert.equal(check(cert(['spiffe://prod.example.org/ns/gw/sa/../envoy'])), null, 'a malformed SPIFFE ID');
  assert.equal(check(cert([], 'CN=envoy,O=Other')), null);
  assert.throws(() => allowedXdsClients([{}]), /allowedClients\[0\]/);
});
