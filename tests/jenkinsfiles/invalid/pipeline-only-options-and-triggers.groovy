// expect: 8:23 option `skipStagesAfterUnstable` applies to the whole pipeline
// expect: 13:9 unknown trigger `upstreamish`: Sluice supports cron and githubPush
pipeline {
    agent any
    options { skipStagesAfterUnstable() }
    stages {
        stage('A') {
            options { skipStagesAfterUnstable() }
            steps { echo 'a' }
        }
    }
    triggers {
        upstreamish('x')
        githubPush()
    }
}
