import { createRoot } from 'react-dom/client';
import { App } from './App';
import './styles.css';

// No <StrictMode>: in development it mounts every component twice, which
// would open and close each list's document (and its worker) twice.
createRoot(document.getElementById('root')!).render(<App />);
