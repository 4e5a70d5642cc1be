// Barrel for the hand-written message types of the gateway's gRPC APIs.
// Conventions are described at the top of common.ts.

export type * from './common.ts';
export type * from './ext-proc.ts';
export type * from './ext-authz.ts';
export type * from './health.ts';
