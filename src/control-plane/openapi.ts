/**
 * The admin API's OpenAPI 3.1 document, generated from the route table and
 * the body schemas (routes.ts, resources.ts). Served at /v1/openapi.json;
 * committed as docs/control-plane-openapi.json, which a test keeps equal to
 * this (regenerate: `node src/cli/main.ts control-plane --openapi > docs/control-plane-openapi.json`).
 */
import { z } from 'zod';
import { ROUTES } from './routes.ts';

const ERROR = {
  type: 'object',
  required: ['error'],
  properties: {
    error: {
      type: 'object',
      required: ['status', 'code', 'message', 'details'],
      properties: {
        status: { type: 'integer' },
        code: { type: 'string' },
        message: { type: 'string' },
        details: {
          type: 'array',
          items: { type: 'object', required: ['field', 'message'], properties: { field: { type: 'string' }, message: { type: 'string' } } },
        },
      },
    },
  },
};

const errorResponse = (description: string): object => ({ description, content: { 'application/json': { schema: { $ref: '#/components/schemas/Error' } } } });

export function openApiDocument(): Record<string, unknown> {
  const paths: Record<string, Record<string, unknown>> = {};
  for (const r of ROUTES) {
    const op: Record<string, unknown> = {
      operationId: `${r.verb}${r.kind === null ? '' : r.kind.charAt(0).toUpperCase() + r.kind.slice(1)}`,
      summary: r.summary,
      tags: [r.kind ?? 'meta'],
    };
    const params: object[] = [];
    if (r.path.includes('{id}')) params.push({ name: 'id', in: 'path', required: true, schema: { type: 'string' } });
    if (r.ifMatch) params.push({ name: 'If-Match', in: 'header', required: true, schema: { type: 'string' }, description: 'The ETag read (e.g. "3")' });
    if (params.length > 0) op['parameters'] = params;
    if (r.access === null) op['security'] = [];
    else
      op['description'] =
        `Needs the ${r.access === 'write' ? 'write role (igw:admin:write by default)' : 'read or write role (igw:admin:read / igw:admin:write by default)'}.`;
    if (r.body !== undefined) {
      op['requestBody'] = {
        required: true,
        content: { 'application/json': { schema: z.toJSONSchema(r.body, { io: 'input', unrepresentable: 'any', target: 'draft-2020-12' }) } },
      };
    } else if (r.verb === 'patch') {
      op['requestBody'] = { required: true, content: { 'application/merge-patch+json': { schema: { type: 'object' } } } };
    }
    const ok = r.verb === 'create' ? '201' : r.verb === 'delete' ? '204' : '200';
    const responses: Record<string, unknown> = {
      [ok]:
        ok === '204'
          ? { description: 'Deleted' }
          : {
              description: 'OK',
              content: { 'application/json': { schema: { type: 'object' } } },
              ...(r.path.includes('{id}') || r.verb === 'create' ? { headers: { ETag: { schema: { type: 'string' } } } } : {}),
            },
    };
    if (r.access !== null) {
      responses['401'] = errorResponse('No token, or an invalid one');
      responses['403'] = errorResponse('The token lacks the role');
    }
    if (r.path.includes('{id}')) responses['404'] = errorResponse('No such resource');
    if (r.ifMatch) {
      responses['412'] = errorResponse('The resource changed since it was read (If-Match is stale)');
      responses['428'] = errorResponse('If-Match is missing');
    }
    if (r.access === 'write') responses['422'] = errorResponse('Invalid body or resulting state; details name each field');
    if (r.verb === 'create' || r.verb === 'delete') responses['409'] = errorResponse('Already exists / still referenced');
    op['responses'] = responses;
    (paths[r.path] ??= {})[r.method.toLowerCase()] = op;
  }
  return {
    openapi: '3.1.0',
    info: {
      title: 'inference-gateway control plane admin API',
      version: 'v1',
      description: 'Models, deployments, plans, tenants and API keys of the inference gateway (docs/control-plane.md).',
    },
    // Either credential: a bearer JWT (auth.jwt) or a client certificate over HTTPS (listen.tls + auth.mtls).
    security: [{ bearerJwt: [] }, { clientCertificate: [] }],
    paths,
    components: {
      securitySchemes: {
        bearerJwt: { type: 'http', scheme: 'bearer', bearerFormat: 'JWT' },
        clientCertificate: { type: 'mutualTLS', description: 'A client certificate mapped by auth.mtls (SPIFFE ID or subject) to a principal and roles' },
      },
      schemas: { Error: ERROR },
    },
  };
}
