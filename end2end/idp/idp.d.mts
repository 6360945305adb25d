// Types for idp.mjs, so the TypeScript tests can import it.
export interface IdpUser {
  email: string;
  name: string;
  groups: string[];
}

export declare const USERS: { alice: IdpUser; bob: IdpUser; mallory: IdpUser };
export declare const CLIENT_ID: string;
export declare const CLIENT_SECRET: string;

export interface IdpStartOptions {
  redirectUris: string[];
  postLogoutRedirectUris?: string[];
  /** Seconds (default 3600). */
  accessTokenTtl?: number;
  backchannelLogoutUri?: string;
}

export interface Idp {
  /** e.g. http://127.0.0.1:40123 (no trailing slash). */
  readonly issuer: string;
  /** Resolves to the oidc-provider instance (untyped: the package ships no types). */
  start(options: IdpStartOptions): Promise<unknown>;
  close(): Promise<void>;
  /** The provider's notices and failure lines so far. */
  logs(): string;
  /** Refresh-token grants the token endpoint answered with new tokens since `start`. */
  refreshCount(): number;
  /** Refresh-token grants the token endpoint refused (e.g. invalid_grant) since `start`. */
  refusedRefreshCount(): number;
  /**
   * Revokes every grant issued since `start`, with its refresh and access tokens, so the next
   * refresh is refused with invalid_grant. Resolves to the number of grants revoked.
   */
  revokeAllGrants(): Promise<number>;
  readonly provider: unknown;
}

export declare function bindIdp(options?: {
  port?: number;
  host?: string;
  /** Receives each failure line (default: stderr). */
  log?: (line: string) => void;
  /** Sends oidc-provider's development warnings to `log` instead of the console. */
  quiet?: boolean;
}): Promise<Idp>;
