import { useState } from "preact/hooks";

/** A destructive action behind a second, explicit click: the button opens a confirmation first. */
export function ConfirmButton(props: { label: string; question: string; onConfirm: () => Promise<void>; testId?: string }) {
  const [asking, setAsking] = useState(false);
  const [error, setError] = useState<string>();
  if (!asking) {
    return (
      <button class="danger" data-testid={props.testId} onClick={() => setAsking(true)}>
        {props.label}
      </button>
    );
  }
  return (
    <span class="confirm" role="alertdialog">
      {props.question}{" "}
      <button
        class="danger"
        data-testid={props.testId ? `${props.testId}-confirm` : undefined}
        onClick={() =>
          props.onConfirm().then(
            () => setAsking(false),
            (err: Error) => setError(err.message),
          )
        }
      >
        Yes, {props.label.toLowerCase()}
      </button>{" "}
      <button onClick={() => setAsking(false)}>Cancel</button>
      {error ? <span class="error"> {error}</span> : null}
    </span>
  );
}
