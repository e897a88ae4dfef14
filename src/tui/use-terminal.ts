/**
 * The terminal's size from Ink's stdout, followed on resize, and a clock that ticks once a
 * second while something on screen counts down.
 */
import { useStdout } from 'ink';
import { useEffect, useState } from 'react';

/** what a terminal that does not say its size is taken to be */
const DEFAULT_SIZE = { columns: 80, rows: 24 };

export interface TerminalSize {
  columns: number;
  rows: number;
}

function read(stdout: NodeJS.WriteStream): TerminalSize {
  return {
    columns: stdout.columns > 0 ? stdout.columns : DEFAULT_SIZE.columns,
    rows: stdout.rows > 0 ? stdout.rows : DEFAULT_SIZE.rows,
  };
}

export function useTerminalSize(): TerminalSize {
  const { stdout } = useStdout();
  const [size, setSize] = useState(() => read(stdout));
  useEffect(() => {
    const onResize = () => setSize(read(stdout));
    stdout.on('resize', onResize);
    return () => {
      stdout.off('resize', onResize);
    };
  }, [stdout]);
  return size;
}

/** `clock()` now, and again every second while `active` */
export function useNow(clock: () => number, active: boolean): number {
  const [now, setNow] = useState(clock);
  useEffect(() => {
    if (!active) return;
    setNow(clock());
    const timer = setInterval(() => setNow(clock()), 1000);
    return () => clearInterval(timer);
  }, [clock, active]);
  return active ? now : clock();
}
