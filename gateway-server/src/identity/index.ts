export {
  type ClientSecretAuthMethod,
  DEFAULT_DEV_CLIENTS,
  DEMO_USERS,
  type DevClient,
  type DevProviderOptions,
  type DevUser,
  type RunningDevProvider,
  startDevProvider,
} from './dev-provider';
export { DEFAULT_ROLE_MAPPING, type Role, type RoleMapping, rolesFor } from './roles';
export {
  createTokenVerifier,
  DEFAULT_ALGORITHMS,
  isLoopbackHost,
  type Principal,
  rejectionFor,
  TokenError,
  type TokenRejection,
  type TokenVerifier,
  type VerifierLog,
  type VerifierOptions,
} from './verifier';
