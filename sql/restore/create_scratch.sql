-- A drill's scratch database (owned by the connecting role, a superuser or a managed server's admin; the
-- archive is restored without owners).
CREATE DATABASE :"database" ENCODING 'UTF8' TEMPLATE template0;
