import { anthropicKey } from './anthropic-key.js';
import { authorizationHeader } from './authorization-header.js';
import { awsAccessKeyId } from './aws-access-key-id.js';
import { awsSecretAccessKey } from './aws-secret-access-key.js';
import { azureClientSecret } from './azure-client-secret.js';
import { azureStorageKey } from './azure-storage-key.js';
import { bearerToken } from './bearer-token.js';
import { custosToken } from './custos-token.js';
import { databaseConnectionString } from './database-connection-string.js';
import type { Detector } from './detector.js';
import { githubFineGrainedToken } from './github-fine-grained-token.js';
import { githubToken } from './github-token.js';
import { gitlabToken } from './gitlab-token.js';
import { googleApiKey } from './google-api-key.js';
import { huggingfaceToken } from './huggingface-token.js';
import { jwt } from './jwt.js';
import { npmToken } from './npm-token.js';
import { openaiKey } from './openai-key.js';
import { privateKey } from './private-key.js';
import { pypiToken } from './pypi-token.js';
import { secretAssignment } from './secret-assignment.js';
import { sendgridKey } from './sendgrid-key.js';
import { slackToken } from './slack-token.js';
import { slackWebhook } from './slack-webhook.js';
import { stripeKey } from './stripe-key.js';
import { twilioKey } from './twilio-key.js';

/**
 * Every detector custos ships, specific formats first. When two overlap the
 * redactor covers the union of both spans, so the order only decides which
 * name the marker shows.
 */
export const builtinDetectors: readonly Detector[] = Object.freeze([
  privateKey,
  jwt,
  awsAccessKeyId,
  awsSecretAccessKey,
  githubToken,
  githubFineGrainedToken,
  custosToken,
  gitlabToken,
  slackToken,
  slackWebhook,
  stripeKey,
  anthropicKey,
  openaiKey,
  googleApiKey,
  azureStorageKey,
  azureClientSecret,
  huggingfaceToken,
  npmToken,
  pypiToken,
  twilioKey,
  sendgridKey,
  databaseConnectionString,
  authorizationHeader,
  bearerToken,
  secretAssignment,
]);
