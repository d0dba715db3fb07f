import react from '@vitejs/plugin-react';
import { defineConfig } from 'vite';

// In development the page calls the chatbot backend (examples/chatbot) through Vite's proxy, so no CORS is needed.
const backend = process.env.CHATBOT_URL ?? 'http://127.0.0.1:8081';

export default defineConfig({
  plugins: [react()],
  resolve: {
    // @sluice/client is linked from ../../clients/js, which has no node_modules: use this app's React.
    dedupe: ['react', 'react-dom'],
  },
  server: {
    proxy: { '/chat': backend, '/conversations': backend },
    fs: { allow: ['.', '../../clients/js'] },
  },
});
