import type { PolicyAction, Principal, RefusedTaskSubject } from '@custos/core';
import type { FastifyRequest } from 'fastify';

/**
 * What a route declares about access. Every route must declare one of these
 * (the auth plugin refuses a route that declares none), so a new route cannot
 * silently skip authentication or authorisation.
 */
export type RouteAccess =
  /** Answered without a token (health, seal status, unseal, init, discovery). */
  | { kind: 'public' }
  /** Any valid token, acting on itself (lookup-self, revoke-self). */
  | { kind: 'self' }
  /** An operator token, acting on itself (operator-token routes a task may not use). */
  | { kind: 'operator-self' }
  /**
   * A policy check: `action` on the resource path computed from the request.
   * `operatorOnly`: configuration that only operator tokens may change (roles,
   * policies, engines, seal): a task — an agent's delegated identity — is
   * refused whatever its policies say, so an agent can never mint identities
   * or grants outside its own subtree.
   */
  | { kind: 'policy'; action: PolicyAction; resource: (request: FastifyRequest) => string; operatorOnly?: boolean };

/** The authenticated caller, set by the auth plugin. */
export type AuthContext = Principal;

declare module 'fastify' {
  interface FastifyContextConfig {
    access?: RouteAccess;
    /** Answered while sealed (only sys/health, sys/seal-status, sys/unseal). */
    whileSealed?: boolean;
    /** Not audited: only for side-effect-free probes (health), justified where set. */
    unaudited?: boolean;
    /**
     * A public document, the same for everyone and holding nothing secret
     * (JWKS, RFC 8414 metadata, the OpenAPI document): a 200 may be cached
     * for `maxAgeSec`. Every other response is `Cache-Control: no-store`
     * (see plugins/response-headers-plugin.ts).
     */
    publicCache?: { maxAgeSec: number };
    /**
     * A page or asset of the console (`/ui`): answered with the console's
     * Content-Security-Policy instead of the API's (see
     * plugins/response-headers-plugin.ts).
     */
    console?: boolean;
  }
  interface FastifyRequest {
    auth: AuthContext | null;
    /** The policy decision, for the audit event. */
    decision: 'allow' | 'deny' | null;
    /** The resource path the request acts on, for the audit event. */
    resourcePath: string | null;
    /** Set by the error handler: the code of the error answered. */
    errorCode: string | null;
    /** Why an identity was refused (expired, bad signature, …): for the audit event only, never the client. */
    auditReason: string | null;
    /**
     * The task a refused but genuinely signed task token named (revoked, ended,
     * expired): for the audit event only, where the anomaly rules read it.
     */
    auditRefusedTask: RefusedTaskSubject | null;
    /**
     * The audit-key HMAC of a credential that was refused (an unknown, bad
     * or dead token, an unknown bootstrap token): every refusal carries it,
     * so a refused honeytoken value looks like any other refusal in the
     * trail, and the `honeytoken` rule recognises it by fingerprint. Never
     * the credential itself.
     */
    auditCredential: string | null;
    /** The task a token was issued for (login, start, delegation, reissue): for the audit event. */
    auditIssuedTask: string | null;
    /** The registered resource URL an exchange minted a token for (the child's `aud`), for the audit event. */
    auditAudience: string | null;
    /** The identity a suspension or resume names (`POST /v1/roles/:name/suspend|resume`): for the audit event. */
    auditIdentity: string | null;
    /** The access request whose just-in-time elevation allowed the request (docs/jit.md): for the audit event. */
    auditElevation: string | null;
    /** The secret source a kv read went through (`kv/<source>/…`): for the audit event. */
    auditSource: string | null;
    /** Set by the audit plugin once the request event is durable. */
    auditedRequest: boolean;
  }
}
