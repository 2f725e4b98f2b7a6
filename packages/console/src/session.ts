const KEY = 'custos.operator-token';

/**
 * The operator token lives in this tab's `sessionStorage`: it survives a
 * reload, dies with the tab, is never sent by the browser on its own (unlike
 * a cookie) and is never put in a URL. Signing out removes it.
 */
export const session = {
  get: (): string | null => sessionStorage.getItem(KEY),
  set: (token: string) => sessionStorage.setItem(KEY, token),
  clear: () => sessionStorage.removeItem(KEY),
};
