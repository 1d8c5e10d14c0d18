interface Props {
  offline: boolean;
  onChange: (offline: boolean) => void;
}

/** This tab's "work offline" switch: on, the replica stops syncing (doc.setOnline(false)). */
export function OfflineSwitch({ offline, onChange }: Props) {
  return (
    <label className="switch">
      <input type="checkbox" role="switch" checked={offline} onChange={(e) => onChange(e.target.checked)} />
      <span className="track" aria-hidden="true" />
      Work offline
    </label>
  );
}
