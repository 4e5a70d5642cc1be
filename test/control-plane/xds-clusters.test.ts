/** Backends → the clusters served over xDS: static clusters skipped, drained (weight 0) endpoints left out. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { OUTLIER_DETECTION, xdsClustersOf } from '../../src/control-plane/xds-clusters.ts';

test('weight 0 endpoints are left out (Envoy refuses them), static clusters are not served, the rest as given', () => {
  const clusters = xdsClustersOf(
    [
      {
        cluster: 'pool',
        endpoints: [
          { host: '10.0.0.1', port: 80, weight: 0, priority: 0, deployment: 'drained' },
          { host: 'vllm.svc', port: 80, weight: 3, priority: 1, deployment: 'live' },
        ],
        healthCheck: { path: '/health', intervalMs: 1000, timeoutMs: 100, unhealthyThreshold: 2, healthyThreshold: 1 },
      },
      { cluster: 'all-drained', endpoints: [{ host: '10.0.0.2', port: 80, weight: 0, priority: 0, deployment: 'd' }], healthCheck: null },
      { cluster: 'static-one', endpoints: [{ host: '10.0.0.3', port: 80, weight: 1, priority: 0, deployment: 's' }], healthCheck: null },
    ],
    new Set(['static-one']),
  );
  assert.deepEqual(clusters, [
    {
      name: 'pool',
      endpoints: [{ host: 'vllm.svc', port: 80, weight: 3, priority: 1 }],
      healthCheck: { path: '/health', intervalMs: 1000, timeoutMs: 100, unhealthyThreshold: 2, healthyThreshold: 1 },
      outlierDetection: { ...OUTLIER_DETECTION },
    },
    { name: 'all-drained', endpoints: [], outlierDetection: { ...OUTLIER_DETECTION } },
  ]);
});
