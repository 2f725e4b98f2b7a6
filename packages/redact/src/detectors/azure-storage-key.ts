import type { Detector } from './detector.js';

/**
 * Azure storage account keys (88 base64 characters) and Service Bus / Event
 * Hubs shared access keys, as they appear in connection strings.
 */
export const azureStorageKey: Detector = {
  id: 'azure-storage-key',
  description: 'Azure storage account key or shared access key in a connection string',
  keywords: ['AccountKey=', 'SharedAccessKey='],
  pattern: /(?:AccountKey|SharedAccessKey)=(?<secret>[A-Za-z0-9+/]{42,86}={0,2})(?![A-Za-z0-9+/=])/g,
  maxLength: 110,
  span: /[A-Za-z0-9+/=]/,
  minEntropy: 4,
};
