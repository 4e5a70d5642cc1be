/**
 * The README's control plane walkthrough (`npm start -- --control-plane`):
 * register a model, add a backend on a cluster Envoy has never heard of
 * (it arrives over xDS), create a tenant and a key, then call the model
 * with that key. The README's commands are rendered from these steps
 * (test/cli/stack-control-plane.test.ts checks they match, and runs the
 * same steps against a real stack), so the two cannot drift apart.
 */

export interface AdminStep {
  readonly title: string;
  readonly method: 'POST';
  readonly path: string;
  readonly body: Record<string, unknown>;
}

/** Where the walkthrough's backend listens: the demo model server of the stack. */
export interface WalkthroughPlaces {
  readonly adminUrl: string;
  readonly baseUrl: string;
  readonly upstreamAddress: string;
  /** The stack's folder, as the reader's shell sees it (for the admin token file). */
  readonly dir: string;
}

export const WALKTHROUGH_MODEL = 'my-model';

export function walkthroughSteps(upstreamAddress: string): AdminStep[] {
  return [
    { title: 'Register a model', method: 'POST', path: '/v1/models', body: { id: WALKTHROUGH_MODEL, endpoints: ['chat'] } },
    {
      title: 'Add a backend: a deployment on a new cluster, which reaches Envoy over xDS',
      method: 'POST',
      path: '/v1/deployments',
      body: { id: 'my-backend-1', model: WALKTHROUGH_MODEL, cluster: 'my-backend', upstreamModel: 'demo-model', address: upstreamAddress },
    },
    { title: 'Create a tenant for the key', method: 'POST', path: '/v1/tenants', body: { id: 'my-team', org: 'my-org' } },
    {
      title: 'Create a key (the response shows it once)',
      method: 'POST',
      path: '/v1/keys',
      body: { principal: 'me', org: 'my-org', tenant: 'my-team', models: [WALKTHROUGH_MODEL] },
    },
  ];
}

/** The call the walkthrough ends with, as a request body. */
export const WALKTHROUGH_CHAT = { model: WALKTHROUGH_MODEL, messages: [{ role: 'user', content: 'Hello there' }] };

/** The walkthrough as shell commands (the README's block). */
export function renderWalkthrough(p: WalkthroughPlaces): string {
  const lines = [`TOKEN=$(cat ${p.dir}/admin-token)`, ''];
  const steps = walkthroughSteps(p.upstreamAddress);
  for (const [i, s] of steps.entries()) {
    lines.push(`# ${s.title}`);
    const curl = `curl -s -X ${s.method} ${p.adminUrl}${s.path} -H "Authorization: Bearer $TOKEN" -H 'content-type: application/json' \\\n  -d '${JSON.stringify(s.body)}'`;
    lines.push(i === steps.length - 1 ? `KEY=$(${curl} \\\n  | node -pe 'JSON.parse(require("fs").readFileSync(0, "utf8")).key')` : curl);
    lines.push('');
  }
  lines.push('# Call it (the key and the backend reach the gateway within a second or two)');
  lines.push(
    `curl -s ${p.baseUrl}/v1/chat/completions -H "Authorization: Bearer $KEY" -H 'content-type: application/json' \\\n  -d '${JSON.stringify(WALKTHROUGH_CHAT)}'`,
  );
  return lines.join('\n');
}

/** The walkthrough as the README shows it: the stack's default ports. */
export const README_PLACES: WalkthroughPlaces = {
  adminUrl: 'http://127.0.0.1:9470',
  baseUrl: 'http://127.0.0.1:8080',
  upstreamAddress: '127.0.0.1:8000',
  dir: '.run/stack',
};
