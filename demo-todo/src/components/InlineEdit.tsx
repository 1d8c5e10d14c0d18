import { useEffect, useId, useRef, useState, type FocusEvent, type FormEvent, type KeyboardEvent } from 'react';

interface Props {
  /** The input's label, for screen readers (the form replaces what it edits). */
  label: string;
  initial: string;
  onSave: (value: string) => void;
  /** Called after saving or cancelling (Escape). */
  onDone: () => void;
  /** Called as the form takes focus and loses it (or goes away). */
  onFocusChange?: (focused: boolean) => void;
}

/** A one-line form that edits a title: Enter saves, Escape cancels. */
export function InlineEdit({ label, initial, onSave, onDone, onFocusChange }: Props) {
  const id = useId();
  const [value, setValue] = useState(initial);
  const focusChange = useRef(onFocusChange);
  focusChange.current = onFocusChange;
  // Removed while focused, the form gets no blur: say so as it goes.
  useEffect(() => () => focusChange.current?.(false), []);
  const onBlur = (e: FocusEvent<HTMLFormElement>) => {
    if (!e.currentTarget.contains(e.relatedTarget as Node | null)) onFocusChange?.(false);
  };
  const submit = (e: FormEvent) => {
    e.preventDefault();
    const v = value.trim();
    if (v && v !== initial) onSave(v);
    onDone();
  };
  const onKeyDown = (e: KeyboardEvent) => {
    if (e.key === 'Escape') {
      e.stopPropagation();
      onDone();
    }
  };
  return (
    <form className="inline-edit" onSubmit={submit} onFocus={() => onFocusChange?.(true)} onBlur={onBlur}>
      <label htmlFor={id} className="visually-hidden">
        {label}
      </label>
      <input
        id={id}
        value={value}
        onChange={(e) => setValue(e.target.value)}
        onKeyDown={onKeyDown}
        autoFocus
        required
        maxLength={200}
      />
      <button type="submit">Save</button>
      <button type="button" className="quiet" onClick={onDone}>
        Cancel
      </button>
    </form>
  );
}
