// Types of vite-plugin-pwa's virtual modules (virtual:pwa-register) and of the service worker's injected manifest.
/// <reference types="vite-plugin-pwa/client" />
