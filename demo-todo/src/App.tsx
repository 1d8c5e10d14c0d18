import { useState } from 'react';
import { ListPage } from './components/ListPage';
import { StartPage } from './components/StartPage';
import { useRoute } from './route';

const OFFLINE_KEY = 'sqlsync-demo-todo:offline';

export function App() {
  const route = useRoute();
  // "Work offline" is this tab's choice: kept across reloads of the tab
  // (sessionStorage), and across its lists.
  const [offline, setOffline] = useState(() => sessionStorage.getItem(OFFLINE_KEY) === '1');
  const changeOffline = (off: boolean) => {
    sessionStorage.setItem(OFFLINE_KEY, off ? '1' : '0');
    setOffline(off);
  };
  switch (route.page) {
    case 'list':
      return <ListPage key={route.listId} listId={route.listId} offline={offline} onOfflineChange={changeOffline} />;
    case 'not-found':
      return (
        <main className="page narrow">
          <h1>No such list</h1>
          <p>
            This link does not name a list. <a href="#/">See your lists</a>.
          </p>
        </main>
      );
    default:
      return <StartPage />;
  }
}
