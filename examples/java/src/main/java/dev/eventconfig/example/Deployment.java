package dev.eventconfig.example;

import java.time.Duration;
import java.util.List;
import java.util.Properties;

import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;
import org.apache.kafka.common.serialization.ByteArraySerializer;

/**
 * One eventconfig deployment as a Kafka client sees it (docs/design.md §3): the six topics
 * {@code <prefix>.<role>} and the client settings the contract asks for.
 */
record Deployment(String bootstrapServers, String topicPrefix) {
    String topic(String role) {
        return topicPrefix + "." + role;
    }

    /**
     * A consumer without a group (partitions are assigned, positions kept by the reader, §3) that
     * reads only committed records: everything on these topics is written in transactions (§4.1).
     */
    KafkaConsumer<byte[], byte[]> consumer() {
        Properties props = new Properties();
        props.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrapServers);
        props.put(ConsumerConfig.ISOLATION_LEVEL_CONFIG, "read_committed");
        props.put(ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, "false");
        props.put(ConsumerConfig.AUTO_OFFSET_RESET_CONFIG, "earliest");
        // A mistyped prefix must fail ("does not exist"), not create a topic with the broker's defaults.
        props.put(ConsumerConfig.ALLOW_AUTO_CREATE_TOPICS_CONFIG, "false");
        return new KafkaConsumer<>(props, new ByteArrayDeserializer(), new ByteArrayDeserializer());
    }

    KafkaProducer<byte[], byte[]> producer() {
        Properties props = new Properties();
        props.put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrapServers);
        props.put(ProducerConfig.ACKS_CONFIG, "all");
        return new KafkaProducer<>(props, new ByteArraySerializer(), new ByteArraySerializer());
    }

    /** The partition count of a topic that must exist (checked before a producer could create it). */
    static int partitions(KafkaConsumer<byte[], byte[]> consumer, String topic) {
        var partitions = consumer.partitionsFor(topic, Duration.ofSeconds(30));
        if (partitions == null || partitions.isEmpty()) {
            throw new IllegalStateException("topic " + topic + " does not exist");
        }
        return partitions.size();
    }

    /** Partition 0 of a single-partition topic (log, history, notify), assigned to {@code consumer}. */
    static TopicPartition onlyPartition(KafkaConsumer<byte[], byte[]> consumer, String topic) {
        int partitions = partitions(consumer, topic);
        if (partitions != 1) {
            throw new IllegalStateException("topic " + topic + " has " + partitions
                    + " partitions; the contract says exactly 1");
        }
        TopicPartition tp = new TopicPartition(topic, 0);
        consumer.assign(List.of(tp));
        return tp;
    }

    /**
     * The end of a partition for this read_committed consumer: its last stable offset. A reader is
     * at the end when its position is at or beyond it; never compare with "last record's offset + 1",
     * since transaction markers take offsets and are never delivered (§6).
     */
    static long end(KafkaConsumer<byte[], byte[]> consumer, TopicPartition tp) {
        return consumer.endOffsets(List.of(tp), Duration.ofSeconds(30)).get(tp);
    }
}
