import { ISignal } from '@lumino/signaling';
import * as React from 'react';

/**
 * Re-render the calling component whenever `signal` is emitted.
 */
export function useSignal<T>(signal: ISignal<T, any>): number {
  const [count, setCount] = React.useState(0);
  React.useEffect(() => {
    const slot = () => setCount(c => c + 1);
    signal.connect(slot);
    return () => {
      signal.disconnect(slot);
    };
  }, [signal]);
  return count;
}

/**
 * A checkbox styled as a switch.
 */
export function Switch(props: {
  label: string;
  checked: boolean;
  onChange: (checked: boolean) => void;
  name: string;
}): JSX.Element {
  return (
    <label className="jp-pa-switch" data-switch={props.name}>
      <input
        type="checkbox"
        role="switch"
        className="jp-pa-switch-input"
        checked={props.checked}
        aria-checked={props.checked}
        onChange={event => props.onChange(event.currentTarget.checked)}
      />
      <span className="jp-pa-switch-track" aria-hidden="true">
        <span className="jp-pa-switch-thumb" />
      </span>
      <span className="jp-pa-switch-label">{props.label}</span>
    </label>
  );
}
