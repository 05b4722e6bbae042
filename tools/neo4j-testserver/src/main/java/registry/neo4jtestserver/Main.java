package registry.neo4jtestserver;

import java.net.ServerSocket;
import java.nio.file.Path;
import java.util.concurrent.atomic.AtomicBoolean;
import org.neo4j.configuration.GraphDatabaseSettings;
import org.neo4j.configuration.connectors.BoltConnector;
import org.neo4j.configuration.helpers.SocketAddress;
import org.neo4j.harness.Neo4j;
import org.neo4j.harness.Neo4jBuilder;
import org.neo4j.harness.Neo4jBuilders;

/**
 * Starts Neo4j Community on 127.0.0.1 (Bolt only, no HTTP) for integration tests, prints
 * NEO4J_URI=, NEO4J_USER= and NEO4J_PASSWORD= lines on stdout, and runs until stdin closes or
 * the process is terminated. Usage: java -jar neo4j-testserver.jar [bolt-port|0 [working-dir]]
 */
public final class Main {
    static final String USER = "neo4j";
    static final String PASSWORD = "neo4j-testserver";

    public static void main(String[] args) throws Exception {
        int port = args.length > 0 ? Integer.parseInt(args[0]) : 0;
        if (port == 0) {
            try (ServerSocket s = new ServerSocket(0)) {
                port = s.getLocalPort();
            }
        }
        Neo4jBuilder builder = args.length > 1
                ? Neo4jBuilders.newInProcessBuilder(Path.of(args[1]))
                : Neo4jBuilders.newInProcessBuilder();
        Neo4j neo4j = builder.withDisabledServer()
                .withConfig(BoltConnector.listen_address, new SocketAddress("127.0.0.1", port))
                .withConfig(GraphDatabaseSettings.auth_enabled, true)
                .withConfig(GraphDatabaseSettings.pagecache_memory, 256L << 20)
                .build();
        // Embedded calls bypass auth: replace the initial "must change" password with a fixed one.
        neo4j.databaseManagementService().database(GraphDatabaseSettings.SYSTEM_DATABASE_NAME)
                .executeTransactionally("ALTER USER " + USER + " SET PASSWORD '" + PASSWORD
                        + "' CHANGE NOT REQUIRED");

        // End of input and SIGTERM both stop the server; whichever comes second waits for the first
        // to finish, since the JVM halts as soon as its shutdown hooks return.
        AtomicBoolean closed = new AtomicBoolean();
        Runnable stop = () -> {
            synchronized (closed) {
                if (!closed.getAndSet(true)) {
                    neo4j.close();
                    System.err.println("neo4j-testserver: stopped");
                }
            }
        };
        Runtime.getRuntime().addShutdownHook(new Thread(stop));

        System.out.println("NEO4J_URI=bolt://127.0.0.1:" + neo4j.boltURI().getPort());
        System.out.println("NEO4J_USER=" + USER);
        System.out.println("NEO4J_PASSWORD=" + PASSWORD);
        System.out.flush();

        while (System.in.read() != -1) {
            // Whatever the parent writes is ignored; only end of input matters.
        }
        stop.run();
        System.exit(0);
    }
}
