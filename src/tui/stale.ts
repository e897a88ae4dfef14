/**
 * Whether what is on screen is the last snapshot of a gateway that is gone: components dim
 * themselves instead of each being told.
 */
import { createContext, useContext } from 'react';

export const StaleContext = createContext(false);

export function useStale(): boolean {
  return useContext(StaleContext);
}
